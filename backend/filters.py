"""Query-string filters (django-filter). Invalid values are a 400 with the field's message."""

import functools
import re
from datetime import UTC, datetime
from typing import Any, cast

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters import utils as filter_utils
from django_filters.constants import EMPTY_VALUES

from backend.models import Booking, Session, User
from backend.pagination import stable_order_terms
from backend.selectors.catalog import CATALOG_RATING_FIELD, CatalogQuery
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
    """Orders by the requested fields, then by id (pagination.stable_order_terms); fields in
    `nulls_last` put their nulls last in both directions."""

    def __init__(self, *args, nulls_last: tuple[str, ...] = (), **kwargs):
        self.nulls_last = set(nulls_last)
        super().__init__(*args, **kwargs)

    def ordering_terms(self, value) -> tuple[str, ...]:
        """The validated `?ordering=` as model field terms ("rating" -> its field)."""
        if value in EMPTY_VALUES:
            return ()
        return tuple(self.get_ordering_value(param) for param in value if param not in EMPTY_VALUES)

    def filter(self, qs, value):
        ordering = self.ordering_terms(value)
        if not ordering:
            return qs
        return qs.order_by(*stable_order_terms(ordering, self.nulls_last))


ORDERING_FIELDS = (("start_time", "start_time"), ("price", "price"), ("created_at", "created_at"))
CATALOG_ORDERING_FIELDS = (*ORDERING_FIELDS, (CATALOG_RATING_FIELD, "rating"))


class SessionFilter(django_filters.FilterSet):
    """The public catalog's filters (CONTRACT.md "Catalog filters"): validated here
    (`catalog_query`), applied by selectors.catalog_filtered.

    Without `start_after`, only sessions that have not started are listed; an explicit
    `start_after` replaces that bound. With `search` and no `ordering`, best matches come first.
    """

    search = django_filters.CharFilter(
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
        help_text="`true`: online sessions only; `false`: in-person only.",
    )
    available = django_filters.ChoiceFilter(
        choices=BOOLEAN_CHOICES,
        help_text="`true`: sessions with seats left; `false`: sold-out ones.",
    )
    runs = django_filters.ChoiceFilter(
        choices=[("confirmed", "confirmed"), ("pending_minimum", "pending_minimum")],
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
    def is_unfiltered(cls, query_params) -> bool:
        """True when no filter parameter is present (only `page`, `page_size` or unknown ones):
        the catalog's hottest read then skips validating the form."""
        return not any(name in query_params for name in cls.base_filters)

    @classmethod
    def catalog_query(cls, query_params) -> CatalogQuery:
        """The query string, validated (a 400 naming the field otherwise), as a CatalogQuery.

        Only validation and the API docs come from the filters declared here: the rows come
        from selectors.catalog_filtered, whose SQL is compiled once per shape. So the form
        class is built once per process (a FilterSet deep-copies every filter per instance).
        """
        if cls.is_unfiltered(query_params):
            return CatalogQuery()
        form = _catalog_form_class()(data=query_params)
        if not form.is_valid():
            raise filter_utils.translate_validation(form.errors)
        data = {
            name: value for name, value in form.cleaned_data.items() if value not in EMPTY_VALUES
        }
        creator = _creator_terms(data.pop("creator", None))
        search = data.pop("search", "").strip()
        ordering = cls.base_filters["ordering"]
        plain: dict[str, Any] = {name: data.get(name) for name in _PLAIN_VALUES}
        return CatalogQuery(
            search=search or None,
            **creator,
            **plain,
            is_online=_boolean(data.get("is_online")),
            available=_boolean(data.get("available")),
            runs=data.get("runs"),
            ordering=cast(StableOrderingFilter, ordering).ordering_terms(data.get("ordering")),
        )

    def filter_queryset(self, queryset):
        raise NotImplementedError("the catalog filters with selectors.catalog_filtered")


# Form values that reach CatalogQuery unchanged.
_PLAIN_VALUES = ("category", "min_price", "max_price", "start_after", "start_before", "series")


@functools.cache
def _catalog_form_class() -> type[forms.Form]:
    return SessionFilter(queryset=Session.objects.none()).get_form_class()


def _boolean(value: str | None) -> bool | None:
    return None if value is None else value in TRUE_VALUES


def _creator_terms(value: str | None) -> dict[str, Any]:
    """`creator=`: an id (digits; past the database's range nothing matches) or a username."""
    if value is None:
        return {}
    value = value.strip()
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if value.isdecimal():
        creator_id = int(value)
        return {"nothing": True} if creator_id > MAX_ID else {"creator_id": creator_id}
    return {"creator_username": value}


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
