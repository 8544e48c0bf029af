"""Query-string filters (django-filter). Invalid values are a 400 with the field's message."""

import re
from datetime import UTC, datetime

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import F, OrderBy
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.constants import EMPTY_VALUES

from backend.models import Booking, Session, User
from backend.selectors.catalog import catalog_filter_runs, catalog_search
from backend.selectors.creators import creator_search, creator_with_category

BOOLEAN_CHOICES = [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")]
TRUE_VALUES = {"true", "1"}
# Ids beyond a signed 64-bit integer cannot exist; comparing them would be a database error.
MAX_ID = 2**63 - 1
# An unencoded "+" in a query string arrives as a space: "...T10:00:00 02:00".
SPACE_FOR_PLUS_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class AwareDateTimeField(forms.DateTimeField):
    """ISO 8601 with an offset; a naive time is ambiguous and rejected, like in request bodies."""

    default_error_messages = {
        "invalid": "Enter an ISO 8601 date-time with an offset, e.g. 2026-12-01T18:00:00Z.",
        "naive": "Include a UTC offset, for example 2026-12-01T18:00:00Z or +02:00.",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        parsed: datetime | None
        if isinstance(value, datetime):
            parsed = value
        else:
            text = SPACE_FOR_PLUS_OFFSET.sub(r"\1+\2", str(value).strip())
            try:
                parsed = parse_datetime(text)
            except ValueError:
                parsed = None
            if parsed is None:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
        if timezone.is_naive(parsed):
            raise ValidationError(self.error_messages["naive"], code="naive")
        try:
            # In UTC for the database: PostgreSQL refuses offsets beyond 15:59 (Python allows
            # 23:59), and year 1 with a positive offset has no UTC equivalent at all.
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError) as error:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from error


class AwareDateTimeFilter(django_filters.Filter):
    field_class = AwareDateTimeField


class IdFilter(django_filters.NumberFilter):
    """A primary key: a whole number (NumberFilter alone would accept 1.5)."""

    field_class = forms.IntegerField


class StableOrderingFilter(django_filters.OrderingFilter):
    """Orders by the requested fields, then by id, so pages never overlap or skip rows.

    Fields in `nulls_last` (nullable ones, like a rating) put their nulls last in both
    directions; the others keep plain ORDER BY, which their indexes serve.
    """

    def __init__(self, *args, nulls_last: tuple[str, ...] = (), **kwargs):
        self.nulls_last = set(nulls_last)
        super().__init__(*args, **kwargs)

    def _order_by(self, ordering: str) -> str | OrderBy:
        name = ordering.lstrip("-")
        if name not in self.nulls_last:
            return ordering
        if ordering.startswith("-"):
            return F(name).desc(nulls_last=True)
        return F(name).asc(nulls_last=True)

    def filter(self, qs, value):
        if value in EMPTY_VALUES:
            return qs
        ordering = [self.get_ordering_value(param) for param in value if param not in EMPTY_VALUES]
        if not ordering:
            return qs
        tiebreak = "-id" if ordering and ordering[0].startswith("-") else "id"
        return qs.order_by(*(self._order_by(field) for field in ordering), tiebreak)


ORDERING_FIELDS = (("start_time", "start_time"), ("price", "price"), ("created_at", "created_at"))
# The catalog also sorts by its creator's average rating (unrated creators last).
CATALOG_RATING_FIELD = "creator__creator_rating__average"
CATALOG_ORDERING_FIELDS = (*ORDERING_FIELDS, (CATALOG_RATING_FIELD, "rating"))


class SessionFilter(django_filters.FilterSet):
    """The public catalog's filters (CONTRACT.md "Catalog filters").

    Without `start_after`, only sessions that have not started are listed; an explicit
    `start_after` replaces that bound. With `search` and no `ordering`, best matches come first.
    """

    search = django_filters.CharFilter(
        method="filter_search",
        max_length=200,
        help_text="Words to find in the title, description, category or creator's name.",
    )
    category = django_filters.CharFilter(
        field_name="category",
        lookup_expr="iexact",
        max_length=50,
        help_text="Exactly this category (case-insensitive), e.g. `yoga`.",
    )
    creator = django_filters.CharFilter(
        method="filter_creator",
        max_length=150,
        help_text="The creator's id or username (case-insensitive).",
    )
    min_price = django_filters.NumberFilter(
        field_name="price",
        lookup_expr="gte",
        min_value=0,
        max_digits=12,
        decimal_places=2,
        help_text="Price at least this (in the session's currency), e.g. `10.00`.",
    )
    max_price = django_filters.NumberFilter(
        field_name="price",
        lookup_expr="lte",
        min_value=0,
        max_digits=12,
        decimal_places=2,
        help_text="Price at most this; `0` lists free sessions.",
    )
    start_after = AwareDateTimeFilter(
        field_name="start_time",
        lookup_expr="gte",
        help_text="Starting at or after this ISO 8601 time with an offset; replaces the "
        "default `not started yet`.",
    )
    start_before = AwareDateTimeFilter(
        field_name="start_time",
        lookup_expr="lte",
        help_text="Starting at or before this ISO 8601 time with an offset.",
    )
    is_online = django_filters.ChoiceFilter(
        choices=BOOLEAN_CHOICES,
        method="filter_is_online",
        help_text="`true`: online sessions only; `false`: in-person only.",
    )
    available = django_filters.ChoiceFilter(
        choices=BOOLEAN_CHOICES,
        method="filter_available",
        help_text="`true`: sessions with seats left; `false`: sold-out ones.",
    )
    runs = django_filters.ChoiceFilter(
        choices=[("confirmed", "confirmed"), ("pending_minimum", "pending_minimum")],
        method="filter_runs",
        help_text="`confirmed`: sessions that will run (no minimum, or it is reached or "
        "decided); `pending_minimum`: still waiting for their minimum.",
    )
    series = IdFilter(
        field_name="series_id",
        min_value=1,
        max_value=MAX_ID,
        help_text="Only the dates of this recurring series (its id); still upcoming ones only "
        "unless `start_after` is given.",
    )
    ordering = StableOrderingFilter(
        fields=CATALOG_ORDERING_FIELDS,
        nulls_last=(CATALOG_RATING_FIELD,),
        help_text="Sort by `start_time`, `price`, `created_at` or `rating` (the creator's "
        "average, unrated last); `-` for descending, ties by id (default: `start_time`, or "
        "best match with `search`).",
    )

    class Meta:
        model = Session
        fields: list[str] = []

    @classmethod
    def not_started(cls, queryset):
        """The default lower bound: sessions that have not started yet."""
        return queryset.filter(start_time__gt=timezone.now())

    @classmethod
    def is_unfiltered(cls, query_params) -> bool:
        """True when no filter parameter is present: the result is then `not_started(qs)`.

        Lets the plain catalog page skip building and validating the filter form (a deep copy
        of every filter per request, a sixth of a catalog request in bench/run.sh).
        """
        return not any(name in query_params for name in cls.base_filters)

    def filter_queryset(self, queryset):
        if self.form.cleaned_data.get("start_after") is None:
            queryset = self.not_started(queryset)
        return super().filter_queryset(queryset)

    def filter_search(self, queryset, name, value):
        queryset = catalog_search(queryset, value)
        # An explicit `ordering` (applied after this filter) replaces best-match-first.
        if "search_rank" in queryset.query.annotations:
            queryset = queryset.order_by("-search_rank", "start_time", "id")
        return queryset

    def filter_creator(self, queryset, name, value):
        """A creator's id, or their username (case-insensitive)."""
        value = value.strip()
        if value.isdigit():
            creator_id = int(value)
            if creator_id > MAX_ID:
                return queryset.none()
            return queryset.filter(creator_id=creator_id)
        return queryset.filter(creator__username__iexact=value)

    def filter_is_online(self, queryset, name, value):
        return queryset.filter(is_online=value in TRUE_VALUES)

    def filter_runs(self, queryset, name, value):
        return catalog_filter_runs(queryset, value)

    def filter_available(self, queryset, name, value):
        if value in TRUE_VALUES:
            return queryset.filter(seats_left__gt=0)
        return queryset.filter(seats_left=0)


class MySessionFilter(django_filters.FilterSet):
    """A creator's own sessions: by status, in any of the catalog orderings."""

    status = django_filters.ChoiceFilter(
        choices=Session.Status.choices, help_text="Only sessions in this status."
    )
    ordering = StableOrderingFilter(
        fields=ORDERING_FIELDS,
        help_text="Sort by `start_time`, `price` or `created_at`; `-` for descending (default: "
        "`-start_time`).",
    )

    class Meta:
        model = Session
        fields: list[str] = []


class BookingFilter(django_filters.FilterSet):
    """Filters of the signed-in user's booking lists."""

    status = django_filters.ChoiceFilter(
        choices=Booking.Status.choices, help_text="Only bookings in this status."
    )
    payment_status = django_filters.ChoiceFilter(
        choices=Booking.PaymentStatus.choices, help_text="Only bookings in this payment status."
    )
    session = IdFilter(
        field_name="session_id",
        min_value=1,
        max_value=MAX_ID,
        help_text="Only bookings of this session (its id).",
    )

    class Meta:
        model = Booking
        fields: list[str] = []


class CreatorFilter(django_filters.FilterSet):
    """The public creator list: free-text `search`, `category`, `ordering` (-rating: best first,
    unrated last, ties by id; or username)."""

    search = django_filters.CharFilter(
        method="filter_search",
        max_length=200,
        help_text="Words that must all appear in the username, name or bio.",
    )
    category = django_filters.CharFilter(
        method="filter_category",
        max_length=50,
        help_text="Only creators with a published session in this category (case-insensitive).",
    )
    ordering = StableOrderingFilter(
        fields=(("creator_rating__average", "rating"), ("username", "username")),
        nulls_last=("creator_rating__average",),
        help_text="`-rating` (best average first, unrated last, ties by id), `rating`, "
        "`username` or `-username` (default: username).",
    )

    class Meta:
        model = User
        fields: list[str] = []

    def filter_search(self, queryset, name, value):
        return creator_search(queryset, value)

    def filter_category(self, queryset, name, value):
        value = value.strip()
        return creator_with_category(queryset, value) if value else queryset
