"""Catalog shapes: the session as everyone sees it, the creator's input, attendees."""

from datetime import UTC, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from django.utils import timezone
from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend.booking_rules import (
    MAX_REFUND_TIERS,
    MAX_SEATS_PER_BOOKING,
    refund_policy_of,
    seats_to_go,
)
from backend.models import Booking, Session
from backend.money import SUPPORTED_CURRENCIES, is_whole_in, price_problem
from backend.serializers.common import (
    TimeZoneField,
    UserRefSerializer,
    absolute_url,
    page_of,
)
from backend.serializers.creators import CreatorSummarySerializer, rating_of


class CatalogAnnotations(TypedDict):
    """What the catalog selectors (backend/selectors/catalog.py) annotate on every session."""

    seats_left: int
    viewer_sees_meeting_url: bool
    committed_seats: int


class MySessionAnnotations(CatalogAnnotations):
    """What `my_sessions` adds for the creator."""

    seats_taken: int
    bookings_pending: int
    bookings_confirmed: int
    bookings_cancelled: int
    bookings_expired: int
    waitlist_count: int


# For mypy, a session row with those annotations; at run time (drf-yasg reads the hints) a Session.
if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    CatalogSession = WithAnnotations[Session, CatalogAnnotations]
    MySession = WithAnnotations[Session, MySessionAnnotations]
else:
    CatalogSession = MySession = Session

# Far enough for any real planning, near enough that end_time never overflows.
MAX_DAYS_AHEAD = 5 * 365


class UtcDateTimeField(serializers.DateTimeField):
    """ISO 8601 in, UTC out (`...Z`). A time without an offset is ambiguous: 400."""

    default_error_messages = {
        "naive": "Include a UTC offset, for example 2026-12-01T18:00:00Z or +02:00.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("default_timezone", UTC)
        super().__init__(**kwargs)

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


CENTS = Decimal("0.01")


def utc_iso(value) -> str | None:
    """What UtcDateTimeField writes: ISO 8601 in UTC with a `Z`."""
    if not value:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def money(value) -> str | None:
    """What DecimalField(decimal_places=2) writes with COERCE_DECIMAL_TO_STRING."""
    return None if value is None else f"{Decimal(value).quantize(CENTS):f}"


class SeriesPositionSerializer(serializers.Serializer):
    """Which date of its series a session is: `{"index": 3, "count": 8}` is "3 of 8"."""

    index = serializers.IntegerField(min_value=1)
    count = serializers.IntegerField(min_value=1)

    class Meta:
        ref_name = None  # inline in the schema, so it can be nullable (x-nullable)


class RefundTierSerializer(serializers.Serializer):
    """One tier of a cancellation policy: cancelled at least `hours_before` the start, the
    user gets `refund_percent` of what they paid back."""

    hours_before = serializers.IntegerField(min_value=0, max_value=24 * MAX_DAYS_AHEAD)
    refund_percent = serializers.IntegerField(min_value=0, max_value=100)


class RefundPolicyField(serializers.ListField):
    """1 to MAX_REFUND_TIERS tiers with distinct `hours_before`, stored largest first."""

    child = RefundTierSerializer()

    def __init__(self, **kwargs):
        super().__init__(min_length=1, max_length=MAX_REFUND_TIERS, **kwargs)

    def to_internal_value(self, data):
        validated = super().to_internal_value(data)
        # A PATCH makes nested fields optional (DRF's `partial`); a tier needs both all the same.
        if any(set(tier) != {"hours_before", "refund_percent"} for tier in validated):
            raise serializers.ValidationError("Each tier needs hours_before and refund_percent.")
        tiers = [
            {"hours_before": tier["hours_before"], "refund_percent": tier["refund_percent"]}
            for tier in validated
        ]
        hours = [tier["hours_before"] for tier in tiers]
        if len(set(hours)) != len(hours):
            raise serializers.ValidationError("Two tiers have the same hours_before.")
        return sorted(tiers, key=lambda tier: tier["hours_before"], reverse=True)


class SessionSerializer(serializers.ModelSerializer):
    """A session as the catalog shows it (CONTRACT.md "Session").

    Needs `sessions_annotated()` rows: `seats_left` and `viewer_sees_meeting_url` are
    annotations, the creator and their rating aggregate are select_related.

    The declared fields describe the shape (schema, `fields`); `to_representation` writes it by
    hand because the catalog list is the hottest read: DRF's generic field loop cost about a
    third of a catalog request (bench/run.sh, README "Benchmarks").
    test_catalog_lean_serializer checks it matches the generic output field for field.
    """

    creator = CreatorSummarySerializer(read_only=True)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, read_only=True)
    start_time = UtcDateTimeField(read_only=True)
    end_time = UtcDateTimeField(read_only=True)
    created_at = UtcDateTimeField(read_only=True)
    updated_at = UtcDateTimeField(read_only=True)
    seats_left = serializers.IntegerField(read_only=True)
    meeting_url = serializers.SerializerMethodField()
    image = serializers.SerializerMethodField()
    series = serializers.IntegerField(source="series_id", read_only=True, allow_null=True)
    series_position = serializers.SerializerMethodField()
    refund_policy = serializers.SerializerMethodField()
    min_attendees = serializers.IntegerField(read_only=True, allow_null=True)
    decision_at = UtcDateTimeField(read_only=True, allow_null=True)
    committed_seats = serializers.IntegerField(
        read_only=True, help_text="Seats counting towards min_attendees (0 without a minimum)."
    )
    seats_to_go = serializers.SerializerMethodField()
    decision = serializers.CharField(
        read_only=True, help_text='"" until decided, then "runs" or "called_off".'
    )
    cancel_reason = serializers.CharField(
        read_only=True, help_text='"minimum_not_reached" when called off; "" otherwise.'
    )

    class Meta:
        model = Session
        fields = [
            "id",
            "creator",
            "title",
            "description",
            "category",
            "price",
            "currency",
            "duration_minutes",
            "start_time",
            "end_time",
            "capacity",
            "seats_left",
            "location",
            "is_online",
            "meeting_url",
            "image",
            "status",
            "timezone",
            "series",
            "series_position",
            "refund_policy",
            "min_attendees",
            "decision_at",
            "committed_seats",
            "seats_to_go",
            "decision",
            "cancel_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, session: CatalogSession) -> dict:
        creator = session.creator
        return {
            "id": session.id,
            "creator": {
                "id": creator.id,
                "username": creator.username,
                "first_name": creator.first_name,
                "last_name": creator.last_name,
                "avatar": absolute_url(self, creator.avatar_link),
                "rating": rating_of(creator),
            },
            "title": session.title,
            "description": session.description,
            "category": session.category,
            "price": money(session.price),
            "currency": session.currency,
            "duration_minutes": session.duration_minutes,
            "start_time": utc_iso(session.start_time),
            "end_time": utc_iso(session.end_time),
            "capacity": session.capacity,
            "seats_left": session.seats_left,
            "location": session.location,
            "is_online": session.is_online,
            "meeting_url": self.get_meeting_url(session),
            "image": self.get_image(session),
            "status": session.status,
            "timezone": session.timezone,
            "series": session.series_id,
            "series_position": self.get_series_position(session),
            "refund_policy": self.get_refund_policy(session),
            "min_attendees": session.min_attendees,
            "decision_at": utc_iso(session.decision_at),
            "committed_seats": session.committed_seats,
            "seats_to_go": self.get_seats_to_go(session),
            "decision": session.decision,
            "cancel_reason": session.cancel_reason,
            "created_at": utc_iso(session.created_at),
            "updated_at": utc_iso(session.updated_at),
        }

    @swagger_serializer_method(serializers.IntegerField())
    def get_seats_to_go(self, session: CatalogSession) -> int:
        """`max(min_attendees - committed_seats, 0)`; 0 without a minimum."""
        return seats_to_go(min_attendees=session.min_attendees, committed=session.committed_seats)

    @swagger_serializer_method(serializers.URLField(allow_null=True))
    def get_meeting_url(self, session: CatalogSession) -> str | None:
        """Null unless the viewer is the creator or holds a confirmed booking (and it is set)."""
        if session.viewer_sees_meeting_url and session.meeting_url:
            return session.meeting_url
        return None

    @swagger_serializer_method(SeriesPositionSerializer(allow_null=True))
    def get_series_position(self, session: Session) -> dict[str, int | None] | None:
        """Which date of its series this is, `{index, count}` ("3 of 8"); null for a one-off."""
        if session.series_id is None:
            return None
        count = getattr(session, "series_occurrences", None)
        if count is None and session.series is not None:
            # Not a sessions_annotated() row: one query, for this one session.
            count = session.series.occurrence_count
        return {"index": session.series_position, "count": count}

    @swagger_serializer_method(RefundTierSerializer(many=True))
    def get_refund_policy(self, session: Session) -> list[dict[str, int]]:
        """The tiers that apply, largest `hours_before` first: the session's own, or the
        platform default (a full refund up to CANCELLATION_WINDOW_HOURS before the start)."""
        return refund_policy_of(session)

    @swagger_serializer_method(serializers.URLField(allow_null=True))
    def get_image(self, session: Session) -> str | None:
        if not session.image:
            return None
        url = session.image.url
        request = self.context.get("request")
        # Local storage gives a path; S3 already gives an absolute (presigned) URL.
        return request.build_absolute_uri(url) if request is not None else url


class SessionBookingCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField(source="bookings_pending")
    confirmed = serializers.IntegerField(source="bookings_confirmed")
    cancelled = serializers.IntegerField(source="bookings_cancelled")
    expired = serializers.IntegerField(source="bookings_expired")


class MySessionSerializer(SessionSerializer):
    """A creator's own session with its seats taken and bookings by status."""

    seats_taken = serializers.IntegerField(read_only=True)
    booking_counts = SessionBookingCountsSerializer(source="*", read_only=True)
    waitlist_count = serializers.IntegerField(
        read_only=True, help_text="People waiting (status `waiting`) on this session's waitlist."
    )

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "seats_taken", "booking_counts", "waitlist_count"]
        read_only_fields = fields

    # Narrower than the parent's on purpose: my_sessions rows carry the counts as well.
    def to_representation(  # type: ignore[override]
        self, session: MySession
    ) -> dict:
        return {
            **super().to_representation(session),
            "seats_taken": session.seats_taken,
            "booking_counts": {
                "pending": session.bookings_pending,
                "confirmed": session.bookings_confirmed,
                "cancelled": session.bookings_cancelled,
                "expired": session.bookings_expired,
            },
            "waitlist_count": session.waitlist_count,
        }


class SessionWriteSerializer(serializers.ModelSerializer):
    """What a creator sends to create or edit a session.

    Validates the input's shape; state rules (transitions, capacity versus seats taken) are
    the service's. On PATCH the cross-field checks look at the merged result.
    """

    title = serializers.CharField(min_length=3, max_length=200)
    description = serializers.CharField(
        max_length=10000, required=False, allow_blank=True, trim_whitespace=False
    )
    category = serializers.CharField(max_length=50, required=False, allow_blank=True)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3, required=False)
    duration_minutes = serializers.IntegerField(min_value=5, max_value=1440)
    start_time = UtcDateTimeField()
    capacity = serializers.IntegerField(min_value=1, max_value=10000)
    location = serializers.CharField(max_length=255, required=False, allow_blank=True)
    is_online = serializers.BooleanField(required=False)
    meeting_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=Session.Status.choices, required=False)
    timezone = TimeZoneField(required=False)
    refund_policy = RefundPolicyField(
        required=False,
        allow_null=True,
        help_text=(
            f"1 to {MAX_REFUND_TIERS} tiers `{{hours_before, refund_percent}}` (hours >= 0, "
            "percent 0-100, distinct hours). A user cancelling a paid booking gets the percent "
            "of the tier with the largest hours_before not above the hours left; none: refused. "
            "null: the platform default (100 % up to CANCELLATION_WINDOW_HOURS before)."
        ),
    )

    min_attendees = serializers.IntegerField(
        min_value=1,
        max_value=10000,
        required=False,
        allow_null=True,
        help_text="Run only if this many seats are committed by decision_at (null: always runs).",
    )
    decision_at = UtcDateTimeField(
        required=False,
        allow_null=True,
        help_text=(
            "When the minimum is decided (default start_time - 48 h): at least 1 h after "
            "publishing and 1 h before the start. Ignored without min_attendees."
        ),
    )

    class Meta:
        model = Session
        fields = [
            "title",
            "description",
            "category",
            "price",
            "currency",
            "duration_minutes",
            "start_time",
            "capacity",
            "location",
            "is_online",
            "meeting_url",
            "status",
            "timezone",
            "refund_policy",
            "min_attendees",
            "decision_at",
        ]

    def validate_title(self, value: str) -> str:
        if len(value.strip()) < 3:
            raise serializers.ValidationError("Ensure this field has at least 3 characters.")
        return value.strip()

    def validate_category(self, value: str) -> str:
        # Categories are tags: one spelling each, so the category filter finds them all.
        return value.strip().lower()

    def validate_currency(self, value: str) -> str:
        code = value.strip().upper()
        if code not in SUPPORTED_CURRENCIES:
            raise serializers.ValidationError(
                f"Unsupported currency. Use one of: {', '.join(SUPPORTED_CURRENCIES)}."
            )
        return code

    def validate_meeting_url(self, value: str) -> str:
        if value and not value.lower().startswith(("https://", "http://")):
            raise serializers.ValidationError("Use an http(s) link.")
        return value

    def validate_start_time(self, value):
        unchanged = self.instance is not None and self.instance.start_time == value
        if not unchanged and value <= timezone.now():
            raise serializers.ValidationError("The start time must be in the future.")
        if value > timezone.now() + timedelta(days=MAX_DAYS_AHEAD):
            raise serializers.ValidationError(
                f"The start time must be within {MAX_DAYS_AHEAD // 365} years."
            )
        return value

    def validate_status(self, value: str) -> str:
        if self.instance is None and value == Session.Status.CANCELLED:
            raise serializers.ValidationError("A new session cannot start out cancelled.")
        return value

    def validate(self, attrs: dict) -> dict:
        def merged(name, default=None):
            if name in attrs:
                return attrs[name]
            if self.instance is not None:
                return getattr(self.instance, name)
            return default

        is_online = merged("is_online", False)
        errors = {}
        if not is_online and merged("meeting_url", ""):
            errors["meeting_url"] = ["A meeting URL is only for online sessions."]
        if not is_online and not merged("location", "").strip():
            errors["location"] = ["An in-person session needs a location."]
        currency = merged("currency", "USD")
        price = merged("price")
        if price is not None and not is_whole_in(price, currency):
            errors["price"] = [f"{currency} prices must be whole numbers."]
        if errors:
            raise serializers.ValidationError(errors)
        if price is not None:
            # A price no booking could ever pay: under Stripe's minimum charge, or a largest
            # booking (MAX_SEATS_PER_BOOKING seats) over its maximum amount. Its own code.
            problem = price_problem(price=price, currency=currency, max_seats=MAX_SEATS_PER_BOOKING)
            if problem is not None:
                raise problem
        if self.instance is None:
            attrs.setdefault("currency", "USD")
        return attrs


class SessionAttendeeSerializer(serializers.ModelSerializer):
    """One booking of a creator's session: who, how many seats, in which state."""

    user = UserRefSerializer(read_only=True)
    name = serializers.SerializerMethodField()
    email = serializers.EmailField(source="user.email", read_only=True)
    amount = serializers.DecimalField(max_digits=10, decimal_places=2, read_only=True)
    created_at = UtcDateTimeField(read_only=True)
    confirmed_at = UtcDateTimeField(read_only=True, allow_null=True)
    cancelled_at = UtcDateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Booking
        fields = [
            "id",
            "user",
            "name",
            "email",
            "seats",
            "status",
            "payment_status",
            "amount",
            "currency",
            "notes",
            "created_at",
            "confirmed_at",
            "cancelled_at",
        ]
        read_only_fields = fields

    @swagger_serializer_method(serializers.CharField())
    def get_name(self, booking: Booking) -> str:
        return booking.user.get_full_name() or booking.user.username


MySessionPageSerializer = page_of(MySessionSerializer, "MySessionPageSerializer")
SessionAttendeePageSerializer = page_of(SessionAttendeeSerializer, "SessionAttendeePageSerializer")
