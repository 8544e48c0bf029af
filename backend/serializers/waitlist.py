"""Waitlist shapes (CONTRACT.md, "Waitlist")."""

from typing import cast

from rest_framework import serializers

from backend.booking_rules import MAX_SEATS_PER_BOOKING
from backend.models import WaitlistEntry
from backend.serializers.common import SessionSummarySerializer, UserRefSerializer, page_of


class WaitlistJoinSerializer(serializers.Serializer):
    seats = serializers.IntegerField(
        min_value=1,
        max_value=MAX_SEATS_PER_BOOKING,
        default=1,
        help_text="How many seats you wait for (1 to 10); an offer is for exactly these.",
    )


class WaitlistEntrySerializer(serializers.ModelSerializer):
    """An entry as its user sees it. Needs `position` annotated and the session's creator."""

    session = SessionSummarySerializer(read_only=True)
    position = serializers.SerializerMethodField(
        help_text="1 = next in line; null unless `waiting`."
    )
    booking = serializers.IntegerField(
        source="booking_id",
        read_only=True,
        allow_null=True,
        help_text="The offer's booking (pay it before `offer_expires_at`); null before an offer.",
    )

    class Meta:
        model = WaitlistEntry
        fields = [
            "id",
            "session",
            "seats",
            "status",
            "position",
            "offer_expires_at",
            "booking",
            "created_at",
        ]
        read_only_fields = fields

    def get_position(self, entry: WaitlistEntry) -> int | None:
        return cast(int | None, getattr(entry, "position", None))


class SessionWaitlistEntrySerializer(WaitlistEntrySerializer):
    """An entry on the creator's list of their session: who waits, not which session."""

    user = UserRefSerializer(read_only=True)
    session = serializers.IntegerField(source="session_id", read_only=True)  # type: ignore[assignment]

    class Meta(WaitlistEntrySerializer.Meta):
        fields = [
            "id",
            "session",
            "user",
            "seats",
            "status",
            "position",
            "offer_expires_at",
            "booking",
            "created_at",
        ]
        read_only_fields = fields


WaitlistEntryPageSerializer = page_of(WaitlistEntrySerializer, "WaitlistEntryPageSerializer")
SessionWaitlistEntryPageSerializer = page_of(
    SessionWaitlistEntrySerializer, "SessionWaitlistEntryPageSerializer"
)
