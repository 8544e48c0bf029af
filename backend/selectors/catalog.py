"""Catalog reads: the public list, one session, a creator's own sessions and attendees.

Every queryset here carries what the serializers need in the same query: the creator and their
rating aggregate (`select_related`), `seats_left` and `viewer_sees_meeting_url` (annotations),
so a page costs the same number of queries whatever its size.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    Expression,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.files import FieldFile
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from backend import booking_rules
from backend.booking_rules import committed_q, seat_holding_q, stale_hold_q
from backend.models import Booking, CreatorRating, Session, User, WaitlistEntry
from backend.models.catalog import SessionQuerySet
from backend.pagination import DeepPagePaginator, stable_order_terms
from backend.selectors import compiled

# The weighted document a catalog search looks at. On PostgreSQL it is stored: migration
# 0012_catalog_search_vector adds `sessions.search_vector`, a generated column of exactly this
# expression, with the GIN index `session_search_gin_idx` on it (so neither search nor ranking
# recomputes a row's vector). Change both together; test_postgres_search_expression_matches_
# the_gin_index checks the planner uses the index.
SEARCH_CONFIG = "english"
SESSION_SEARCH_VECTOR_TEMPLATE = (
    "(setweight(to_tsvector('english'::regconfig, COALESCE({title}, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, COALESCE({description}, '')), 'B')"
    " || setweight(to_tsvector('english'::regconfig, COALESCE({category}, '')), 'C'))"
)
SEARCH_VECTOR_COLUMN = "search_vector"
# A creator's names as search matches them (simple config: as written, no stemming, not
# ranked). Stored too: migration 0015_creator_name_search_vector adds `users.
# name_search_vector`, a generated column of exactly this expression, with the GIN index
# `user_name_search_gin_idx` on creators' rows, so a search no longer computes every creator's
# vector. Change both together; test_creator_name_search_uses_the_gin_index checks the plan.
NAME_SEARCH_CONFIG = "simple"
CREATOR_NAME_VECTOR_TEMPLATE = (
    "to_tsvector('simple'::regconfig, COALESCE({username}, '') || ' '"
    " || COALESCE({first_name}, '') || ' ' || COALESCE({last_name}, ''))"
)
NAME_VECTOR_COLUMN = "name_search_vector"
# SQLite has no full-text ranking here: at most this many words, each must appear somewhere.
MAX_SEARCH_WORDS = 8


class StoredVector(Func):
    """A stored tsvector column that the model does not declare (SQLite has none).

    It is named next to one of the table's declared columns (`anchor`), under whatever alias
    the query gives the table. Subclasses name the anchor and the column; the source
    expressions are the columns the stored vector is computed from.
    """

    output_field = SearchVectorField()
    anchor = ""
    column = ""

    def __init__(self, *sources: str):
        super().__init__(*(F(source) for source in sources))

    # Builds its own SQL, so Func's function/template/arg_joiner do not apply.
    def as_sql(self, compiler, connection, **extra_context):  # type: ignore[override]
        anchor, params = compiler.compile(self.get_source_expressions()[0])
        anchor_column = connection.ops.quote_name(self.anchor)
        if params or not anchor.endswith(anchor_column):
            raise ValueError(f"unexpected {self.anchor} column SQL: {anchor}")
        return anchor[: -len(anchor_column)] + connection.ops.quote_name(self.column), []


class SessionSearchVector(StoredVector):
    """The session's tsvector (title A, description B, category C): `sessions.search_vector`."""

    anchor = "title"
    column = SEARCH_VECTOR_COLUMN

    def __init__(self):
        super().__init__("title", "description", "category")


class CreatorNameVector(StoredVector):
    """A user's names (username, first, last) as one tsvector: `users.name_search_vector`."""

    anchor = "username"
    column = NAME_VECTOR_COLUMN

    def __init__(self):
        super().__init__("username", "first_name", "last_name")


class EqualsAnyOf(Expression):
    """`column = ANY(ARRAY(subquery))`.

    Unlike `column IN (subquery)` inside an OR, PostgreSQL evaluates the array once (an
    InitPlan) and can use it as an index condition, so `vector @@ q OR creator_id = ANY(...)`
    stays a BitmapOr of two index scans instead of a sequential scan.
    """

    output_field = BooleanField()

    def __init__(self, column, queryset):
        super().__init__()
        self.column = column
        self.subquery = Subquery(queryset)

    def get_source_expressions(self):
        return [self.column, self.subquery]

    def set_source_expressions(self, expressions):
        self.column, self.subquery = expressions

    def as_sql(self, compiler, connection, **extra_context):
        column_sql, column_params = compiler.compile(self.column)
        subquery_sql, subquery_params = compiler.compile(self.subquery)
        return f"{column_sql} = ANY(ARRAY{subquery_sql})", [*column_params, *subquery_params]


def _seats_taken_expression(now=None):
    holding = (
        Booking.objects.filter(session=OuterRef("pk"))
        .filter(seat_holding_q(now))
        .order_by()
        .values("session")
        .annotate(total=Sum("seats"))
        .values("total")
    )
    return Coalesce(Subquery(holding, output_field=IntegerField()), Value(0))


def committed_seats_expression(now=None) -> Case:
    """Seats counting towards the session's minimum (booking_rules.committed_q); 0 for a
    session without one, whose rows skip the subquery (CASE evaluates it only when needed)."""
    committed = (
        Booking.objects.filter(session=OuterRef("pk"))
        .filter(committed_q(now))
        .order_by()
        .values("session")
        .annotate(total=Sum("seats"))
        .values("total")
    )
    return Case(
        When(
            min_attendees__isnull=False,
            then=Coalesce(Subquery(committed, output_field=IntegerField()), Value(0)),
        ),
        default=Value(0),
        output_field=IntegerField(),
    )


def _viewer_sees_meeting_url(viewer) -> Expression:
    """True for the session's creator and for holders of a confirmed booking."""
    if viewer is None or not viewer.is_authenticated:
        return Value(False, output_field=BooleanField())
    confirmed = Booking.objects.filter(
        session=OuterRef("pk"), user_id=viewer.pk, status=Booking.Status.CONFIRMED
    )
    return Case(
        When(Q(creator_id=viewer.pk) | Q(Exists(confirmed)), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def sessions_annotated(*, viewer=None, now=None) -> SessionQuerySet:
    """All sessions with `seats_left`, `viewer_sees_meeting_url`, `series_occurrences` (the
    date count of the session's series, null for a one-off: a join, not a query per row) and
    alias `held_seats`."""
    now = now or timezone.now()
    return (
        # The creator's rating aggregate is a LEFT JOIN in the same query (creator.rating).
        Session.objects.select_related("creator__creator_rating")
        # An alias, not an annotation: the subquery is then computed once per row, inside
        # seats_left, instead of twice.
        .alias(held_seats=_seats_taken_expression(now))
        .annotate(
            seats_left=_seats_left(),
            viewer_sees_meeting_url=_viewer_sees_meeting_url(viewer),
            series_occurrences=F("series__occurrence_count"),
            committed_seats=committed_seats_expression(now),
        )
    )


def _seats_left() -> Greatest:
    """`capacity - held_seats`, never below 0 (needs the `held_seats` alias)."""
    return Greatest(F("capacity") - F("held_seats"), Value(0), output_field=IntegerField())


def catalog_base(*, now=None) -> QuerySet[Session]:
    """The public catalog before filters, lean: published sessions, `seats_left` an alias.

    Filters (`available` reads `seats_left`), ordering and the page's total run on this: its
    COUNT costs what a plain count does, with no select list to build and then throw away
    (about a fifth of a catalog request before). `catalog_row_fields` then adds what an entry
    shows, for the page's rows only. "Not started yet" is applied by the catalog FilterSet,
    because an explicit `start_after` replaces that lower bound.
    """
    now = now or timezone.now()
    return (
        Session.objects.filter(status=Session.Status.PUBLISHED)
        .alias(held_seats=_seats_taken_expression(now))
        .alias(seats_left=_seats_left())
    )


def catalog_row_fields(queryset: QuerySet[Session], *, viewer=None, now=None) -> QuerySet[Session]:
    """What a catalog entry shows beyond the session's columns (see `sessions_annotated`), on
    a `catalog_base()` queryset after its filters. Adding columns filters no row out, so the
    count of the queryset before this is the count after it."""
    return queryset.annotate(
        seats_left=F("seats_left"),
        viewer_sees_meeting_url=_viewer_sees_meeting_url(viewer),
        series_occurrences=F("series__occurrence_count"),
        committed_seats=committed_seats_expression(now),
    )


def catalog_list(*, viewer=None) -> QuerySet[Session]:
    """The public catalog before filters, with every entry's fields: published sessions."""
    return catalog_row_fields(catalog_base(), viewer=viewer)


def catalog_filter_runs(queryset: QuerySet[Session], runs: str, *, now=None) -> QuerySet[Session]:
    """`runs=confirmed`: sessions that will run (no minimum, decided to run, or minimum reached
    by now); `pending_minimum`: a minimum still to be reached before its decision."""
    certain = (
        Q(min_attendees__isnull=True)
        | Q(decision=booking_rules.DECISION_RUNS)
        | Q(min_committed__gte=F("min_attendees"))
    )
    queryset = queryset.alias(min_committed=committed_seats_expression(now))
    if runs == "confirmed":
        return queryset.filter(certain)
    return queryset.filter(~certain, decided_at__isnull=True)


def session_visible_to(*, viewer=None, now=None) -> QuerySet[Session]:
    """Sessions anyone may open (published or cancelled), plus the viewer's own drafts."""
    visible = Q(status__in=[Session.Status.PUBLISHED, Session.Status.CANCELLED])
    if viewer is not None and viewer.is_authenticated:
        visible |= Q(creator_id=viewer.pk)
    return sessions_annotated(viewer=viewer, now=now).filter(visible)


def session_get_for_viewer(*, session_id: int, viewer=None) -> Session | None:
    return session_visible_to(viewer=viewer).filter(pk=session_id).first()


class CreatorRow:
    """A session's creator from a catalog row: reads like the `User` the serializers expect.

    `avatar_link` is the model's own property, so the rule (uploaded avatar over the
    provider's picture) stays in one place.
    """

    avatar_link = User.avatar_link
    rating_average: Any
    rating_review_count: int | None

    def __init__(self, values: dict):
        self.__dict__.update(values)
        self.avatar = _file(_AVATAR_FIELD, values["avatar"])

    @property
    def creator_rating(self):
        """Like the reverse one-to-one: DoesNotExist when the creator has no rating row."""
        if self.rating_review_count is None:  # never null in a stored rating row
            raise CreatorRating.DoesNotExist
        return _Rating(self.rating_average, self.rating_review_count)


class _Rating:
    __slots__ = ("average", "review_count")

    def __init__(self, average, review_count):
        self.average = average
        self.review_count = review_count


class SessionRow:
    """A catalog session built from `.values()` instead of model instances.

    The catalog list and detail are the hottest reads; a model instance per session, creator
    and rating cost more than the serializer (bench/cpu.py). A row carries every concrete
    Session column (by attname: `creator_id`, `series_id`), every annotation of the queryset
    it came from, `end_time` (the model's property), `image` as the same FieldFile a model
    would give, and `creator` as a CreatorRow. So SessionSerializer.to_representation serves
    rows and model instances alike: a new column or annotation needs no change here.
    """

    end_time = Session.end_time

    def __init__(self, values: dict):
        creator = {name: values.pop(column) for name, column in _CREATOR_COLUMNS.items()}
        self.__dict__.update(values)
        self.image = _file(_IMAGE_FIELD, values["image"])
        self.creator = CreatorRow(creator)


def _file(field: Any, name: str) -> FieldFile:
    """The FieldFile a model instance would give for this stored name (its URL, its bool)."""
    return FieldFile(None, field, name)  # type: ignore[arg-type]  # no instance: only read


_IMAGE_FIELD = Session._meta.get_field("image")
_AVATAR_FIELD = User._meta.get_field("avatar")
# CreatorRow attribute -> the column it is read from, through the session's creator.
_CREATOR_COLUMNS = {
    "id": "creator_id",
    "username": "creator__username",
    "first_name": "creator__first_name",
    "last_name": "creator__last_name",
    "avatar": "creator__avatar",
    "avatar_url": "creator__avatar_url",
    "rating_average": "creator__creator_rating__average",
    "rating_review_count": "creator__creator_rating__review_count",
}
_SESSION_COLUMNS = tuple(field.attname for field in Session._meta.concrete_fields)
_ROW_COLUMNS = (
    *_SESSION_COLUMNS,
    *(column for column in _CREATOR_COLUMNS.values() if column not in _SESSION_COLUMNS),
)


def _row_values(queryset: QuerySet[Session]) -> QuerySet[Session, dict[str, Any]]:
    # Its annotations come along (`seats_left`, `viewer_sees_meeting_url`, `search_rank`, ...);
    # its aliases (`held_seats`) are not selected, as in the model path.
    return queryset.values(*_ROW_COLUMNS, *queryset.query.annotation_select)


def catalog_rows(queryset: QuerySet[Session]) -> list[SessionRow]:
    """Evaluates a catalog queryset (filtered, ordered, sliced) as SessionRows, one query."""
    return [SessionRow(values) for values in _row_values(queryset)]


class _StandInViewer:
    """A signed-in viewer with a stand-in id, for compiling a shape once (compiled.py)."""

    is_authenticated = True

    def __init__(self, pk: int):
        self.pk = pk


def _viewer_parts(viewer) -> tuple[bool, int | None]:
    signed_in = viewer is not None and viewer.is_authenticated
    return signed_in, (viewer.pk if signed_in else None)


def session_row_for_viewer(*, session_id: int, viewer=None) -> SessionRow | None:
    """`session_get_for_viewer` as a SessionRow (the detail page's read), its SQL compiled
    once per process (compiled.py)."""
    signed_in, viewer_id = _viewer_parts(viewer)

    def shape(stand_ins: compiled.StandIns) -> QuerySet[Any]:
        stand_in = _StandInViewer(stand_ins.viewer_id) if signed_in else None
        visible = session_visible_to(viewer=stand_in, now=stand_ins.now)
        return _row_values(visible.filter(pk=stand_ins.object_id))

    values = compiled.values_rows(
        ("session_detail", signed_in), shape, viewer_id=viewer_id, object_id=session_id
    )
    if values is None:
        rows = catalog_rows(session_visible_to(viewer=viewer).filter(pk=session_id))
    else:
        rows = [SessionRow(row) for row in values]
    return rows[0] if rows else None


# The catalog also sorts by its creator's average rating (unrated creators last).
CATALOG_RATING_FIELD = "creator__creator_rating__average"


@dataclass(frozen=True)
class CatalogQuery:
    """A validated catalog query string (SessionFilter.catalog_query), as the SQL takes it.

    The value fields (VALUE_FIELDS) are parameters of the compiled SQL; the others, and
    whether each value field is present, decide the SQL's shape (`shape_key`).
    """

    search: str | None = None
    category: str | None = None
    creator_id: int | None = None
    creator_username: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    start_after: datetime | None = None
    start_before: datetime | None = None
    series: int | None = None
    is_online: bool | None = None
    available: bool | None = None
    runs: str | None = None
    # Ordering terms ("-price", CATALOG_RATING_FIELD); empty: soonest (or best match) first.
    ordering: tuple[str, ...] = ()
    # A creator id past the database's range: nothing can match.
    nothing: bool = False

    VALUE_FIELDS: ClassVar[tuple[str, ...]] = (
        "search",
        "category",
        "creator_id",
        "creator_username",
        "min_price",
        "max_price",
        "start_after",
        "start_before",
        "series",
    )

    def inputs(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in self.VALUE_FIELDS
            if getattr(self, name) is not None
        }

    def shape_key(self) -> tuple:
        shaped = self.is_online, self.available, self.runs, self.ordering, self.nothing
        return (*sorted(self.inputs()), *shaped)


def catalog_filtered(query: CatalogQuery, *, now) -> QuerySet[Session]:
    """The catalog's rows for `query`, ordered: a `catalog_base()` queryset (CONTRACT.md
    "Catalog filters"). Without `start_after`, only sessions that have not started."""
    listed = catalog_base(now=now)
    if query.nothing:
        return listed.none()
    if query.start_after is not None:
        listed = listed.filter(start_time__gte=query.start_after)
    else:
        listed = listed.filter(start_time__gt=now)
    conditions = {
        "start_time__lte": query.start_before,
        "category__iexact": query.category,
        "creator_id": query.creator_id,
        "creator__username__iexact": query.creator_username,
        "price__gte": query.min_price,
        "price__lte": query.max_price,
        "series_id": query.series,
        "is_online": query.is_online,
    }
    listed = listed.filter(**{k: v for k, v in conditions.items() if v is not None})
    if query.available is not None:
        # `seats_left` is catalog_base's alias (Q: the stubs only know model fields).
        listed = listed.filter(Q(seats_left__gt=0) if query.available else Q(seats_left=0))
    if query.runs is not None:
        listed = catalog_filter_runs(listed, query.runs, now=now)
    if query.search is not None:
        listed = catalog_search(listed, query.search)
        if "search_rank" in listed.query.annotations:
            listed = listed.order_by("-search_rank", "start_time", "id")
    if query.ordering:
        listed = listed.order_by(*stable_order_terms(query.ordering, {CATALOG_RATING_FIELD}))
    return listed


def catalog_count(query: CatalogQuery) -> int:
    """How many sessions the catalog lists for `query` (its page total), the SQL compiled once
    per shape (compiled.py)."""

    def shape(stand_ins: compiled.StandIns) -> QuerySet[Any]:
        return catalog_filtered(replace(query, **stand_ins.inputs), now=stand_ins.now)

    total = compiled.count(("catalog", query.shape_key()), shape, inputs=query.inputs())
    return catalog_filtered(query, now=timezone.now()).count() if total is None else total


def catalog_page(query: CatalogQuery, *, viewer, bottom: int, top: int) -> list[SessionRow]:
    """Entries `bottom` to `top` of the catalog for `query`, the SQL compiled once per shape
    and viewer kind, whatever the page (compiled.py)."""
    if top <= bottom:
        return []
    signed_in, viewer_id = _viewer_parts(viewer)

    def shape(stand_ins: compiled.StandIns) -> QuerySet[Any]:
        stand_in = _StandInViewer(stand_ins.viewer_id) if signed_in else None
        listed = catalog_filtered(replace(query, **stand_ins.inputs), now=stand_ins.now)
        entries = catalog_row_fields(listed, viewer=stand_in, now=stand_ins.now)
        return _row_values(DeepPagePaginator.slice_rows(entries, stand_ins.bottom, stand_ins.top))

    values = compiled.values_rows(
        ("catalog", query.shape_key(), signed_in),
        shape,
        viewer_id=viewer_id,
        inputs=query.inputs(),
        page=(bottom, top),
    )
    if values is None:
        now = timezone.now()
        entries = catalog_row_fields(catalog_filtered(query, now=now), viewer=viewer, now=now)
        return catalog_rows(DeepPagePaginator.slice_rows(entries, bottom, top))
    return [SessionRow(row) for row in values]


def catalog_search(queryset: QuerySet[Session], term: str) -> QuerySet[Session]:
    """Sessions matching `term`, with a `search_rank` (higher is better).

    PostgreSQL: full-text search over the weighted vector (title above description above
    category) or the creator's name. Elsewhere: every word must appear (case-insensitive) in the
    title, description, category or creator name; a title hit ranks above a description hit.
    """
    term = term.strip()
    if not term:
        return queryset
    if connection.vendor == "postgresql":
        return _search_postgres(queryset, term)
    return _search_simple(queryset, term)


def _search_postgres(queryset: QuerySet[Session], term: str) -> QuerySet[Session]:
    # websearch_to_tsquery never raises on user input (quotes, "or", "-word" all allowed).
    query = SearchQuery(term, config=SEARCH_CONFIG, search_type="websearch")
    name_query = SearchQuery(term, config=NAME_SEARCH_CONFIG, search_type="websearch")
    matching_creators = (
        User.objects.filter(role=User.Role.CREATOR)
        .alias(name_vector=CreatorNameVector())
        .filter(name_vector=name_query)
        .values("id")
    )
    return (
        queryset.alias(search_vector=SessionSearchVector())
        .filter(Q(search_vector=query) | Q(EqualsAnyOf(F("creator_id"), matching_creators)))
        .annotate(search_rank=SearchRank(F("search_vector"), query))
    )


def _search_simple(queryset: QuerySet[Session], term: str) -> QuerySet[Session]:
    words = term.split()[:MAX_SEARCH_WORDS]
    rank: Expression = Value(0, output_field=IntegerField())
    for word in words:
        queryset = queryset.filter(
            Q(title__icontains=word)
            | Q(description__icontains=word)
            | Q(category__icontains=word)
            | Q(creator__username__icontains=word)
            | Q(creator__first_name__icontains=word)
            | Q(creator__last_name__icontains=word)
        )
        rank = (
            rank
            + Case(When(title__icontains=word, then=Value(3)), default=Value(0))
            + Case(When(description__icontains=word, then=Value(2)), default=Value(0))
            + Case(When(category__icontains=word, then=Value(1)), default=Value(0))
        )
    return queryset.annotate(search_rank=rank)


def _booking_count(status_q: Q) -> Count:
    return Count("bookings", filter=status_q)


def my_sessions(*, creator: User) -> QuerySet[Session]:
    """A creator's sessions in every status with booking counts; latest start first.

    A pending booking past its hold counts as expired even before the cron job marks it.
    """
    now = timezone.now()
    pending_in_hold = Q(bookings__status=Booking.Status.PENDING) & seat_holding_q(
        now, prefix="bookings__"
    )
    expired = Q(bookings__status=Booking.Status.EXPIRED) | stale_hold_q(now, prefix="bookings__")
    # A subquery, not a join: a second join would multiply the booking counts above.
    waiting = (
        WaitlistEntry.objects.filter(session=OuterRef("pk"), status=WaitlistEntry.Status.WAITING)
        .order_by()
        .values("session")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return (
        sessions_annotated(viewer=creator)
        .owned_by(creator)
        .annotate(
            seats_taken=F("held_seats"),
            bookings_pending=_booking_count(pending_in_hold),
            bookings_confirmed=_booking_count(Q(bookings__status=Booking.Status.CONFIRMED)),
            bookings_cancelled=_booking_count(Q(bookings__status=Booking.Status.CANCELLED)),
            bookings_expired=_booking_count(expired),
            waitlist_count=Coalesce(Subquery(waiting, output_field=IntegerField()), Value(0)),
        )
        .order_by("-start_time", "-id")
    )


def session_attendees(*, session: Session) -> QuerySet[Booking]:
    """Every booking of `session` with its user, oldest first (the creator's attendee list)."""
    return (
        Booking.objects.filter(session=session).select_related("user").order_by("created_at", "id")
    )
