"""Booking shapes (CONTRACT.md, "Booking"): one output shape, separate input shapes.

`status`, `payment_status` and `amount` are output only: they move through the workflow
endpoints (confirm, cancel, payment), never through a create or an update. An update that
sends a different value for one of them (or for another read-only field of the output shape)
is a 400 naming each one and changes nothing, as protected profile fields are
(serializers/users.py): a client learns at once that e.g. cancelling is POST cancel/, instead
of believing a PATCH did it. The value it holds may be sent back, so a client can PUT the
object it received with new notes.
"""

from decimal import Decimal, InvalidOperation
from typing import Any, cast

from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend import booking_rules
from backend.booking_rules import MAX_SEATS_PER_BOOKING
from backend.models import Booking, BookingEvent
from backend.serializers.common import SessionSummarySerializer, UserRefSerializer, page_of

# Primary keys are PostgreSQL bigints: a larger number is a 400 here, not a DataError later.
MAX_ID = 2**63 - 1
# The model field sets a max_length, so it is never None.
NOTES_MAX_LENGTH = cast(int, Booking._meta.get_field("notes").max_length)


class ShownStatusField(serializers.ChoiceField):
    """A pending booking whose hold ran out reads as `expired`, before any job marks the row."""

    def __init__(self, **kwargs):
        super().__init__(choices=Booking.Status.choices, read_only=True, **kwargs)

    def get_attribute(self, instance: Booking) -> str:
        return booking_rules.status_as_shown(instance)


class BookingSerializer(serializers.ModelSerializer):
    """A booking as its user and the session's creator see it.

    Needs `select_related("session__creator", "user")`.
    """

    session = SessionSummarySerializer(read_only=True)
    user = UserRefSerializer(read_only=True)
    status = ShownStatusField()
    hold_expires_at = serializers.SerializerMethodField(
        help_text="Until when a pending booking holds its seats (pay by then); null otherwise."
    )

    class Meta:
        model = Booking
        fields = [
            "id",
            "session",
            "user",
            "seats",
            "status",
            "payment_status",
            "amount",
            "refunded_amount",
            "refund_percent",
            "currency",
            "notes",
            "created_at",
            "confirmed_at",
            "cancelled_at",
            "hold_expires_at",
        ]
        read_only_fields = fields

    @swagger_serializer_method(serializers.DateTimeField(allow_null=True))
    def get_hold_expires_at(self, booking: Booking) -> str | None:
        if (
            booking.hold_expires_at is None
            or booking_rules.status_as_shown(booking) != Booking.Status.PENDING
        ):
            return None
        return serializers.DateTimeField().to_representation(booking.hold_expires_at)


class BookingCreateSerializer(serializers.Serializer):
    session = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="Id of a published, upcoming session."
    )
    seats = serializers.IntegerField(
        min_value=1, max_value=MAX_SEATS_PER_BOOKING, default=1, help_text="1 to 10 seats."
    )
    notes = serializers.CharField(
        allow_blank=True, max_length=NOTES_MAX_LENGTH, default="", help_text="For the host."
    )


# Read-only fields of BookingSerializer that an update refuses, with where they do change.
READ_ONLY_BOOKING_FIELDS = {
    "status": " Use POST /api/bookings/{id}/confirm/ or /cancel/.",
    "payment_status": " It follows the payment (POST /api/payment/create-intent/).",
    "amount": " It is the session's price times seats.",
    "refunded_amount": " It follows the refunds.",
    "refund_percent": " It is set by the cancellation.",
    "currency": " It is the session's.",
    "session": "",
    "user": "",
    "created_at": "",
    "confirmed_at": "",
    "cancelled_at": "",
    "hold_expires_at": " It is set by the booking (and a waitlist offer), never by a client.",
}


def _unchanged(sent: Any, current: Any) -> bool:
    """Is `sent` the value the client received (`current`, the serialized booking)?"""
    if sent == current:
        return True
    if isinstance(current, dict):  # a nested object may be sent back whole or as its id
        return sent == current.get("id")
    if isinstance(current, str) and isinstance(sent, str | int | float):
        try:  # "80.0" for "80.00"
            return Decimal(str(sent)) == Decimal(current)
        except InvalidOperation:
            return False
    return False


class BookingUpdateSerializer(serializers.Serializer):
    """Both fields optional for PUT and PATCH alike; a read-only booking field with a value
    other than the booking's (context `current`: BookingSerializer data) is a 400, other keys
    are ignored."""

    seats = serializers.IntegerField(
        min_value=1,
        max_value=MAX_SEATS_PER_BOOKING,
        required=False,
        help_text="Only while the booking is pending and unpaid; the amount follows.",
    )
    notes = serializers.CharField(
        allow_blank=True, max_length=NOTES_MAX_LENGTH, required=False, help_text="For the host."
    )

    def validate(self, attrs: dict) -> dict:
        if isinstance(self.initial_data, dict):
            current = self.context.get("current", {})
            sent = [
                field
                for field in READ_ONLY_BOOKING_FIELDS
                if field in self.initial_data
                and not (field in current and _unchanged(self.initial_data[field], current[field]))
            ]
            if sent:
                raise serializers.ValidationError(
                    {
                        field: [
                            serializers.ErrorDetail(
                                "This field cannot be changed here."
                                + READ_ONLY_BOOKING_FIELDS[field],
                                code="read_only",
                            )
                        ]
                        for field in sent
                    }
                )
        return attrs


class EventActorSerializer(UserRefSerializer):
    """Who made a change, `{id, username}`, or null: the system (expiry, tasks) or Stripe."""

    class Meta(UserRefSerializer.Meta):
        # Inline in the schema, not a $ref: only an inline schema can say "or null" in Swagger 2.
        ref_name = None


class BookingEventSerializer(serializers.ModelSerializer):
    """One change of a booking. `actor` is null for the system (expiry, tasks) and Stripe."""

    actor = EventActorSerializer(read_only=True, allow_null=True)

    class Meta:
        model = BookingEvent
        fields = [
            "id",
            "reason",
            "actor",
            "from_status",
            "to_status",
            "from_payment_status",
            "to_payment_status",
            "seats_before",
            "seats_after",
            "request_id",
            "created_at",
        ]
        read_only_fields = fields


BookingEventPageSerializer = page_of(BookingEventSerializer, "BookingEventPageSerializer")


class BookingRescheduleSerializer(serializers.Serializer):
    session = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        help_text="Id of another published, upcoming session of the same creator and price.",
    )


class CancelQuoteSerializer(serializers.Serializer):
    """What cancelling the booking now would do (booking_rules.CancelQuote)."""

    allowed = serializers.BooleanField(help_text="Whether POST cancel/ would succeed now.")
    refund_percent = serializers.IntegerField(
        help_text="Percent of the amount refunded (0 when nothing was paid)."
    )
    refund_amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="What would be refunded, in `currency`."
    )
    currency = serializers.CharField()
    code = serializers.CharField(
        allow_null=True, help_text="Why not (`cancellation_window`, ...); null when allowed."
    )
    detail = serializers.CharField(allow_blank=True, help_text="Why not, in words.")
