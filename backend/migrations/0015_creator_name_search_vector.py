"""Creator names as a stored, GIN-indexed `tsvector` on `users` (PostgreSQL only).

Catalog search also finds a session by its creator's name. Before, that was a scan of every
user computing `to_tsvector('simple', username || first_name || last_name)` on each request.
Now PostgreSQL keeps `users.name_search_vector` in step with the three names on every write (a
generated column: a rename is searchable from its commit on, no trigger, no application code
to forget), and a GIN index over creators' rows finds the matching creators. The model does
not declare the column (SQLite has no tsvector); backend.selectors.catalog.CreatorNameVector
reads it.

Why a column on `users` and not the names folded into `sessions.search_vector`: a generated
column cannot read another table, so the names there would need a trigger on `users` rewriting
every session of a renamed creator; and the session document uses the English configuration
(stemmed, ranked), the names the simple one (matched as written, not ranked), which one
document could not keep apart. Adding the column rewrites `users` (a short exclusive lock: the
table is small next to `sessions`).
"""

from django.db import migrations

INDEX_NAME = "user_name_search_gin_idx"
# Copied on purpose (a migration must not change when application code does); the same text
# as CREATOR_NAME_VECTOR_TEMPLATE in backend/selectors/catalog.py.
NAME_VECTOR = (
    "to_tsvector('simple'::regconfig, COALESCE(username, '') || ' '"
    " || COALESCE(first_name, '') || ' ' || COALESCE(last_name, ''))"
)


def add_column(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE users ADD COLUMN IF NOT EXISTS name_search_vector tsvector"
        f" GENERATED ALWAYS AS ({NAME_VECTOR}) STORED"
    )
    # Only creators' rows: search looks for creators, and most users are not.
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} ON users USING GIN (name_search_vector)"
        " WHERE role = 'creator'"
    )


def drop_column(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX_NAME}")
    schema_editor.execute("ALTER TABLE users DROP COLUMN IF EXISTS name_search_vector")


class Migration(migrations.Migration):
    dependencies = [("backend", "0014_min_attendees")]

    operations = [migrations.RunPython(add_column, drop_column, elidable=False)]
