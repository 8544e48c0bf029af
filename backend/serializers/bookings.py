"""Booking shapes (CONTRACT.md, "Booking"): one output shape, separate input shapes.

`status`, `payment_status` and `amount` are output only: they move through the workflow
endpoints (confirm, cancel, payment), never through a create or an update. An update that
sends them anyway has them ignored, like every other read-only field of the output shape, so a
client may send back the object it received.
"""

from rest_framework import serializers

from backend import booking_rules
from backend.booking_rules import MAX_SEATS_PER_BOOKING
from backend.models import Booking, BookingEvent
from backend.serializers.common import SessionSummarySerializer, UserRefSerializer, page_of

# Primary keys are PostgreSQL bigints: a larger number is a 400 here, not a DataError later.
MAX_ID = 2**63 - 1
NOTES_MAX_LENGTH = Booking._meta.get_field("notes").max_length


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
            "currency",
            "notes",
            "created_at",
            "confirmed_at",
            "cancelled_at",
        ]
        read_only_fields = fields


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


class BookingUpdateSerializer(serializers.Serializer):
    """Both fields optional for PUT and PATCH alike; anything else sent is ignored."""

    seats = serializers.IntegerField(
        min_value=1,
        max_value=MAX_SEATS_PER_BOOKING,
        required=False,
        help_text="Only while the booking is pending and unpaid; the amount follows.",
    )
    notes = serializers.CharField(
        allow_blank=True, max_length=NOTES_MAX_LENGTH, required=False, help_text="For the host."
    )


class BookingEventSerializer(serializers.ModelSerializer):
    """One change of a booking. `actor` is null for the system (expiry, tasks) and Stripe."""

    actor = UserRefSerializer(read_only=True, allow_null=True)

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
