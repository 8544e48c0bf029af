"""GIN index for the catalog's full-text search (PostgreSQL only; a no-op elsewhere).

The indexed expression must be textually the one backend.selectors.catalog searches with
(SESSION_SEARCH_VECTOR_TEMPLATE), or PostgreSQL will not use the index. It is copied here on
purpose: a migration must not change when application code does.
"""

from django.db import migrations

INDEX_NAME = "session_search_gin_idx"
SEARCH_VECTOR = (
    "(setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, COALESCE(description, '')), 'B')"
    " || setweight(to_tsvector('english'::regconfig, COALESCE(category, '')), 'C'))"
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} ON sessions USING GIN (({SEARCH_VECTOR}))"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX_NAME}")


class Migration(migrations.Migration):
    dependencies = [("backend", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
