"""The catalog's search document as a stored, generated `tsvector` column (PostgreSQL only).

Before, the GIN index was on an expression and every matching row's vector was recomputed
for ranking and counting, so search grew with the number of matches (bench/growth.py). Now
PostgreSQL keeps `sessions.search_vector` in step with title, description and category on
every write (a generated column: no trigger, no application code can forget it), and the GIN
index covers the column. The model does not declare the column (SQLite has no tsvector);
backend.selectors.catalog.SessionSearchVector reads it. Same document as 0002 (the same text,
weights and config), copied on purpose: a migration must not change when application code does.
"""

from django.db import migrations

INDEX_NAME = "session_search_gin_idx"
SEARCH_VECTOR = (
    "(setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, COALESCE(description, '')), 'B')"
    " || setweight(to_tsvector('english'::regconfig, COALESCE(category, '')), 'C'))"
)


def add_column(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX_NAME}")
    schema_editor.execute(
        "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS search_vector tsvector"
        f" GENERATED ALWAYS AS ({SEARCH_VECTOR}) STORED"
    )
    schema_editor.execute(f"CREATE INDEX {INDEX_NAME} ON sessions USING GIN (search_vector)")


def drop_column(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX_NAME}")
    schema_editor.execute("ALTER TABLE sessions DROP COLUMN IF EXISTS search_vector")
    schema_editor.execute(f"CREATE INDEX {INDEX_NAME} ON sessions USING GIN (({SEARCH_VECTOR}))")


class Migration(migrations.Migration):
    dependencies = [("backend", "0011_refund_policy")]

    operations = [migrations.RunPython(add_column, drop_column, elidable=False)]
