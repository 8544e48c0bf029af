"""Querysets compiled once per process and shape, then executed with each request's values.

Building and compiling the catalog's query (the seat-counting subquery, the joins, forty
columns, the filters) is most of a catalog request's CPU: more than fetching and rendering the
rows (bench/cpu.py). For a given shape (which filters are present, the ordering, the viewer's
kind, the page's kind) the SQL text never changes; only the values do: "now", the viewer's id,
the session's id, the filter values, the page's LIMIT and OFFSET. So the queryset is built once
with stand-in values, compiled, and the positions of the stand-ins among its parameters
remembered; later calls put the real values there and execute the same SQL (which psycopg then
also prepares server-side after a few runs).

Stand-ins (`StandIns`, given to the shape's factory):
- every datetime parameter not an input is taken as "now plus a fixed offset" (a hold cutoff
  would be now minus the hold), so the factory must not use any other datetime;
- the viewer and the session are negative ids no row has;
- each named input (a filter value) gets a value of its type that nothing else produces; a
  string stand-in holds `%`, `_` and a backslash, so an input Django escapes or wraps (a LIKE
  pattern) is not found verbatim and the shape is refused rather than fed the raw value;
- the page's LIMIT and OFFSET, which Django writes into the SQL text, are unusual numbers that
  are then turned back into parameters.
A shape where any of this does not hold is not cached: the caller uses the ORM. PostgreSQL
only: elsewhere datetimes reach the SQL as strings and the callers use the ORM as before.
"""

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet
from django.utils import timezone

from backend.pagination import DeepPagePaginator

STAND_IN_NOW = datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
STAND_IN_VIEWER = -918_273_645
STAND_IN_ID = -564_738_291
# A page's stand-in size, and its offset by kind: Django writes no OFFSET for the first page,
# and DeepPagePaginator shapes pages from DEFER_FROM_OFFSET differently (ids first).
STAND_IN_LIMIT = 7919
STAND_IN_OFFSETS = {"first": 0, "early": 173, "deep": DeepPagePaginator.DEFER_FROM_OFFSET + 7411}
# Datetime parameters further than this from STAND_IN_NOW were not derived from it: the shape
# is not cacheable (a bug in its factory), and the ORM path is used.
MAX_OFFSET = timedelta(days=366)
MAX_SHAPES = 512
# Not whitespace (a strip() would eat it), and what LIKE escaping or quoting would change.
_STRING_MARK = "\u2042%_\\stand-in "
_PLACEHOLDER = re.compile(r"%[s%]")


@dataclass(frozen=True)
class StandIns:
    """What a shape's factory builds its queryset with (module docstring)."""

    now: datetime = STAND_IN_NOW
    viewer_id: int = STAND_IN_VIEWER
    object_id: int = STAND_IN_ID
    bottom: int = 0
    top: int = STAND_IN_LIMIT
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Per parameter: (kind, detail): ("now", offset), ("viewer", None), ("id", None),
    # ("input", name), ("limit", None), ("offset", None) or ("value", the value).
    slots: tuple[tuple[str, Any], ...]
    names: tuple[str, ...]
    compiler: Any
    converters: Any


_shapes: OrderedDict[Hashable, _Compiled | None] = OrderedDict()
_lock = threading.Lock()


def supported(using: str = "default") -> bool:
    return connections[using].vendor == "postgresql"


def page_kind(bottom: int) -> str:
    if bottom == 0:
        return "first"
    return "deep" if bottom >= DeepPagePaginator.DEFER_FROM_OFFSET else "early"


def _stand_in(position: int, value: Any) -> Any:
    """A value of `value`'s type that no other parameter of a catalog query can be."""
    if isinstance(value, bool):
        raise TypeError("a boolean changes the SQL: make it part of the shape's key")
    if isinstance(value, int):
        return -(700_000_000 + position)
    if isinstance(value, Decimal):
        return Decimal(f"-{7000 + position}.37")
    if isinstance(value, datetime):
        return STAND_IN_NOW - timedelta(days=3000 + position)
    if isinstance(value, str):
        return f"{_STRING_MARK}{position}"
    raise TypeError(f"no stand-in for a {type(value).__name__}")


def _is(param: Any, stand_in: Any) -> bool:
    return type(param) is type(stand_in) and param == stand_in


def _slots(params, stand_ins: StandIns) -> list[tuple[str, Any]] | None:
    slots: list[tuple[str, Any]] = []
    found: set[str] = set()
    for param in params:
        name = next((n for n, s in stand_ins.inputs.items() if _is(param, s)), None)
        if name is not None:
            found.add(name)
            slots.append(("input", name))
        elif isinstance(param, str) and _STRING_MARK in param:
            return None  # an input reached the SQL changed (escaped, wrapped): not verbatim
        elif isinstance(param, datetime):
            offset = param - STAND_IN_NOW
            if abs(offset) > MAX_OFFSET:
                return None
            slots.append(("now", offset))
        elif _is(param, STAND_IN_VIEWER):
            slots.append(("viewer", None))
        elif _is(param, STAND_IN_ID):
            slots.append(("id", None))
        else:
            slots.append(("value", param))
    if found != set(stand_ins.inputs):
        return None  # an input was dropped or transformed on its way to the SQL
    return slots


def _page_parameters(sql: str, slots: list, stand_ins: StandIns) -> str | None:
    """The SQL with the stand-in LIMIT and OFFSET as parameters (slots updated), or None."""
    clauses = [("LIMIT", stand_ins.top - stand_ins.bottom, "limit")]
    if stand_ins.bottom:
        clauses.append(("OFFSET", stand_ins.bottom, "offset"))
    for word, number, kind in clauses:
        found = list(re.finditer(rf"\b{word} {number}\b", sql))
        if len(found) != 1:
            return None
        start, end = found[0].span()
        before = _PLACEHOLDER.findall(sql, 0, start).count("%s")
        sql = f"{sql[:start]}{word} %s{sql[end:]}"
        slots.insert(before, (kind, None))
    return sql


def _compile(
    queryset: QuerySet[Any], stand_ins: StandIns, *, paged: bool, wrap_count: bool
) -> _Compiled | None:
    compiler = queryset.query.get_compiler(using=queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return None  # Django proved it empty for the stand-ins: not a shape to reuse
    slots = _slots(params, stand_ins)
    if slots is None:
        return None
    if paged:
        paged_sql = _page_parameters(sql, slots, stand_ins)
        if paged_sql is None:
            return None
        sql = paged_sql
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
    factory: Callable[[StandIns], QuerySet[Any]],
    *,
    viewer_id: int | None = None,
    object_id: int | None = None,
    inputs: Mapping[str, Any] | None = None,
    page: tuple[int, int] | None = None,
    now: datetime | None = None,
    wrap_count: bool = False,
) -> list[dict[str, Any]] | None:
    """The rows of `factory(...)` (a `.values()` queryset) for these values, as dicts.

    `factory` is called once per key, with the stand-ins; `inputs` (name -> value) are the
    values the key does not fix (the key must hold everything else the SQL depends on: which
    inputs are present, booleans, the ordering). `page` is (bottom, top): the factory slices
    its queryset to `stand_ins.bottom:stand_ins.top`. None when this database or shape cannot
    be cached: the caller then runs its queryset through the ORM.
    """
    if not supported():
        return None
    inputs = inputs or {}
    full_key = (key, tuple(sorted(inputs)), page and page_kind(page[0]))
    with _lock:
        cached = full_key in _shapes
        compiled = _shapes.get(full_key)
        if cached:
            _shapes.move_to_end(full_key)
    if not cached:
        bottom = STAND_IN_OFFSETS[page_kind(page[0])] if page is not None else 0
        stand_ins = StandIns(
            inputs={name: _stand_in(i, value) for i, (name, value) in enumerate(inputs.items())},
            bottom=bottom,
            top=bottom + STAND_IN_LIMIT,
        )
        compiled = _compile(
            factory(stand_ins), stand_ins, paged=page is not None, wrap_count=wrap_count
        )
        with _lock:
            _shapes[full_key] = compiled
            while len(_shapes) > MAX_SHAPES:
                _shapes.popitem(last=False)
    if compiled is None:
        return None
    now = now or timezone.now()
    values = {"viewer": viewer_id, "id": object_id}
    if page is not None:
        values.update(limit=page[1] - page[0], offset=page[0])
    params = []
    for kind, detail in compiled.slots:
        if kind == "now":
            params.append(now + detail)
        elif kind == "input":
            params.append(inputs[detail])
        elif kind == "value":
            params.append(detail)
        else:
            params.append(values[kind])
    with connections["default"].cursor() as cursor:
        cursor.execute(compiled.sql, params)
        rows = cursor.fetchall()
    if compiled.converters:
        rows = compiled.compiler.apply_converters(rows, compiled.converters)
    names = compiled.names
    return [dict(zip(names, row, strict=True)) for row in rows]


def count(key: Hashable, factory: Callable[[StandIns], QuerySet[Any]], **kwargs: Any) -> int | None:
    """`factory(...).count()` through the same cache (None when it cannot be cached)."""
    rows = values_rows(
        ("count", key),
        lambda stand_ins: factory(stand_ins).order_by().values("pk"),
        wrap_count=True,
        **kwargs,
    )
    return None if rows is None else rows[0]["total"]
