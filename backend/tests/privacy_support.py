"""Helpers for the privacy tests: search every text column of every table for a value."""

from dataclasses import dataclass

from django.db import connection

ME_URL = "/api/users/me/"
EXPORT_URL = "/api/users/me/export/"

# PostgreSQL types that hold text a person's name or address could be in.
PG_TEXT_TYPES = ("character varying", "character", "text", "json", "jsonb", "citext")
SQLITE_TEXT_MARKERS = ("CHAR", "TEXT", "CLOB", "JSON", "VARCHAR")


@dataclass(frozen=True)
class Hit:
    table: str
    column: str
    rows: int


def text_columns() -> list[tuple[str, str]]:
    """Every (table, column) of a text type in the database, whichever app made the table:
    Django's own (admin log, sessions), simplejwt's token tables, social_django's, ours."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t "
                "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
                "AND c.data_type = ANY(%s) ORDER BY 1, 2",
                [list(PG_TEXT_TYPES)],
            )
            return [(table, column) for table, column in cursor.fetchall()]
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        tables = [row[0] for row in cursor.fetchall()]
        columns = []
        for table in tables:
            cursor.execute(f'PRAGMA table_info("{table}")')
            for _cid, name, declared_type, *_rest in cursor.fetchall():
                if any(marker in (declared_type or "").upper() for marker in SQLITE_TEXT_MARKERS):
                    columns.append((table, name))
        return columns


def find_everywhere(value: str) -> list[Hit]:
    """Where `value` occurs (case-insensitive substring) in any text column of any table."""
    assert value, "searching for an empty string finds everything"
    hits = []
    pattern = (
        "%" + value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    )
    with connection.cursor() as cursor:
        for table, column in text_columns():
            cursor.execute(
                f'SELECT COUNT(*) FROM "{table}" '  # noqa: S608 (names from the catalog)
                f"WHERE LOWER(CAST(\"{column}\" AS TEXT)) LIKE %s ESCAPE '\\'",
                [pattern],
            )
            (rows,) = cursor.fetchone()
            if rows:
                hits.append(Hit(table=table, column=column, rows=rows))
    return hits


def tables_with(value: str) -> set[tuple[str, str]]:
    return {(hit.table, hit.column) for hit in find_everywhere(value)}
