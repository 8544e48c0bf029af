"""Querysets compiled once per process and shape, then executed with each request's values.

Building and compiling the catalog's query (the seat-counting subquery, the joins, forty
columns) is most of a catalog request's CPU: more than fetching and rendering the rows
(bench/cpu.py). For a few fixed shapes (the unfiltered catalog page, one session) the SQL text
never changes; only "now", the viewer's id and the session's id do. So the queryset is built
once with stand-in values, compiled, and the positions of the stand-ins among its parameters
remembered; later calls put the real values there and execute the same SQL (which psycopg then
also prepares server-side after a few runs).

Stand-ins: every datetime parameter is taken as "now plus a fixed offset" (the hold cutoff is
now minus the hold), so the shape's factory must not use any other datetime; the viewer and
the session are negative ids no row has. The cache key carries the hold length, so a changed
setting compiles anew. PostgreSQL only: elsewhere datetimes reach the SQL as strings and the
callers use the ORM as before.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet
from django.utils import timezone

STAND_IN_NOW = datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
STAND_IN_VIEWER = -918_273_645
STAND_IN_ID = -564_738_291
# Datetime parameters further than this from STAND_IN_NOW were not derived from it: the shape
# is not cacheable (a bug in its factory), and the ORM path is used.
MAX_OFFSET = timedelta(days=366)
MAX_SHAPES = 512


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Per parameter: ("now", offset), ("viewer", None), ("id", None) or ("value", the value).
    slots: tuple[tuple[str, Any], ...]
    names: tuple[str, ...]
    compiler: Any
    converters: Any


_shapes: OrderedDict[Hashable, _Compiled | None] = OrderedDict()
_lock = threading.Lock()


def supported(using: str = "default") -> bool:
    return connections[using].vendor == "postgresql"


def _compile(queryset: QuerySet[Any], *, wrap_count: bool = False) -> _Compiled | None:
    compiler = queryset.query.get_compiler(using=queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return None  # Django proved it empty for the stand-ins: not a shape to reuse
    slots: list[tuple[str, Any]] = []
    for param in params:
        if isinstance(param, datetime):
            offset = param - STAND_IN_NOW
            if abs(offset) > MAX_OFFSET:
                return None
            slots.append(("now", offset))
        elif param == STAND_IN_VIEWER and not isinstance(param, bool):
            slots.append(("viewer", None))
        elif param == STAND_IN_ID and not isinstance(param, bool):
            slots.append(("id", None))
        else:
            slots.append(("value", param))
    if wrap_count:
        # PostgreSQL plans this as the plain COUNT(*) of the same filter. `sql` is Django's
        # own compiled SQL, every value in it a parameter.
        counted = f"SELECT COUNT(*) FROM ({sql}) counted"  # noqa: S608
        return _Compiled(counted, tuple(slots), ("total",), None, [])
    query = queryset.query
    names = (*query.extra_select, *query.values_select, *query.annotation_select)
    columns = [column for column, _, _ in compiler.select]
    converters = compiler.get_converters(columns)
    return _Compiled(sql, tuple(slots), names, compiler, converters)


def values_rows(
    key: Hashable,
    factory: Callable[[datetime, int, int], QuerySet[Any]],
    *,
    viewer_id: int | None = None,
    object_id: int | None = None,
    now: datetime | None = None,
    wrap_count: bool = False,
) -> list[dict[str, Any]] | None:
    """The rows of `factory(now, viewer_id, object_id)` (a `.values()` queryset) as dicts.

    `factory` is called once per key, with the stand-ins. None when this database or shape
    cannot be cached: the caller then runs its queryset through the ORM.
    """
    if not supported():
        return None
    full_key = (key, settings.BOOKING_HOLD_MINUTES)
    with _lock:
        compiled = _shapes.get(full_key)
        if full_key in _shapes:
            _shapes.move_to_end(full_key)
    if full_key not in _shapes:
        compiled = _compile(
            factory(STAND_IN_NOW, STAND_IN_VIEWER, STAND_IN_ID), wrap_count=wrap_count
        )
        with _lock:
            _shapes[full_key] = compiled
            while len(_shapes) > MAX_SHAPES:
                _shapes.popitem(last=False)
    if compiled is None:
        return None
    now = now or timezone.now()
    params = []
    for kind, value in compiled.slots:
        if kind == "now":
            params.append(now + value)
        elif kind == "viewer":
            params.append(viewer_id)
        elif kind == "id":
            params.append(object_id)
        else:
            params.append(value)
    with connections["default"].cursor() as cursor:
        cursor.execute(compiled.sql, params)
        rows = cursor.fetchall()
    if compiled.converters:
        rows = compiled.compiler.apply_converters(rows, compiled.converters)
    names = compiled.names
    return [dict(zip(names, row, strict=True)) for row in rows]


def count(
    key: Hashable, factory: Callable[[datetime, int, int], QuerySet[Any]], **kwargs: Any
) -> int | None:
    """`factory(...).count()` through the same cache (None when it cannot be cached)."""
    rows = values_rows(
        ("count", key),
        lambda *args: factory(*args).order_by().values("pk"),
        wrap_count=True,
        **kwargs,
    )
    return None if rows is None else rows[0]["total"]
