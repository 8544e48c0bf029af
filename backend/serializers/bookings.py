"""Booking shapes (CONTRACT.md, "Booking"): one output shape, separate input shapes.

`status`, `payment_status` and `amount` are output only: they move through the workflow
endpoints (confirm, cancel, payment), never through a create or an update. An update that
sends them anyway has them ignored, like every other read-only field of the output shape, so a
client may send back the object it received.
"""

from typing import cast

from rest_framework import serializers

from backend.models import Booking
from backend.serializers.common import SessionSummarySerializer, UserRefSerializer
from backend.services.bookings import MAX_SEATS_PER_BOOKING

# Primary keys are PostgreSQL bigints: a larger number is a 400 here, not a DataError later.
MAX_ID = 2**63 - 1
# The model field sets a max_length, so it is never None.
NOTES_MAX_LENGTH = cast(int, Booking._meta.get_field("notes").max_length)


class BookingSerializer(serializers.ModelSerializer):
    """A booking as its user and the session's creator see it.

    Needs `select_related("session__creator", "user")`.
    """

    session = SessionSummarySerializer(read_only=True)
    user = UserRefSerializer(read_only=True)

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
