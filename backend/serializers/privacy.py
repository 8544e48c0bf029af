"""The data export's shape (`GET /api/users/me/export/`): a `UserExport` from the selector.

Every name starts with `Export` (drf-yasg names schemas after serializers). Audit events name
who acted by role only (`you`, `creator`, `staff`, `system`): the identity of the staff member
or creator behind an event is not the exporting user's data.
"""

from typing import Any

from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend.models import (
    Booking,
    BookingEvent,
    Payment,
    Review,
    Session,
    StoredFile,
    User,
    WebhookSubscription,
)
from backend.serializers.catalog import RefundTierSerializer, SessionSerializer
from backend.serializers.common import absolute_url


class ExportProfileSerializer(serializers.ModelSerializer):
    avatar = serializers.SerializerMethodField()
    # As stored: "" when there is none (URLField/EmailField would promise a URI, an address).
    email = serializers.CharField(read_only=True)
    avatar_url = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "role",
            "bio",
            "avatar",
            "avatar_url",
            "oauth_provider",
            "oauth_uid",
            "timezone",
            "is_active",
            "date_joined",
            "last_login",
        ]
        read_only_fields = fields

    @swagger_serializer_method(serializers.URLField(allow_null=True))
    def get_avatar(self, user: User) -> str | None:
        return absolute_url(self, user.avatar_link)


class ExportCreatorSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username"]
        read_only_fields = fields


class ExportSessionSummarySerializer(serializers.ModelSerializer):
    end_time = serializers.DateTimeField(read_only=True)
    creator = ExportCreatorSerializer(read_only=True)

    class Meta:
        model = Session
        fields = ["id", "title", "start_time", "end_time", "creator"]
        read_only_fields = fields


class ExportBookingEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField(
        help_text="Who made the change: `you`, the session's `creator`, `staff`, or `system` "
        "(Stripe, expiry, a background job)."
    )

    class Meta:
        model = BookingEvent
        fields = [
            "reason",
            "actor",
            "from_status",
            "to_status",
            "from_payment_status",
            "to_payment_status",
            "seats_before",
            "seats_after",
            "created_at",
        ]
        read_only_fields = fields

    @swagger_serializer_method(
        serializers.ChoiceField(choices=["you", "creator", "staff", "system"])
    )
    def get_actor(self, event: BookingEvent) -> str:
        if event.actor_id is None:
            return "system"
        if event.actor_id == event.booking.user_id:
            return "you"
        if event.actor_id == event.booking.session.creator_id:
            return "creator"
        return "staff"


class ExportPaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "kind", "stripe_id", "amount", "currency", "status", "created_at"]
        read_only_fields = fields


class ExportBookingSerializer(serializers.ModelSerializer):
    session = ExportSessionSummarySerializer(read_only=True)
    events = ExportBookingEventSerializer(many=True, read_only=True)
    payments = ExportPaymentSerializer(many=True, read_only=True)

    class Meta:
        model = Booking
        fields = [
            "id",
            "session",
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
            "events",
            "payments",
        ]
        read_only_fields = fields


# The catalog's session fields that are not data held about a creator's own session: the
# creator (the exporting user), what is computed when read (the end time, seats left, the
# minimum's progress, the catalog's `{index, count}` series position: `series` names the
# series), and the image (its object is under `files`, with a fresh URL).
NOT_EXPORTED_SESSION_FIELDS = {
    "creator",
    "end_time",
    "seats_left",
    "committed_seats",
    "seats_to_go",
    "series_position",
    "image",
}


class ExportOwnSessionSerializer(serializers.ModelSerializer):
    meeting_url = serializers.CharField(read_only=True)
    refund_policy = RefundTierSerializer(
        many=True,
        read_only=True,
        allow_null=True,
        help_text="The tiers as you set them; null: the platform default.",
    )
    # As stored: "" until decided (a ChoiceField would promise one of the choices).
    decision = serializers.CharField(read_only=True)

    class Meta:
        model = Session
        fields = [
            name
            for name in SessionSerializer.Meta.fields
            if name not in NOT_EXPORTED_SESSION_FIELDS
        ]
        read_only_fields = fields


class ExportStoredFileSerializer(serializers.Serializer):
    key = serializers.CharField(source="file.key")
    purpose = serializers.ChoiceField(source="file.purpose", choices=StoredFile.Purpose.choices)
    session = serializers.IntegerField(source="file.session_id", allow_null=True)
    size = serializers.IntegerField(source="file.size")
    content_type = serializers.CharField(source="file.content_type")
    created_at = serializers.DateTimeField(source="file.created_at")
    url = serializers.SerializerMethodField(help_text="Fresh: presigned now for a private bucket.")

    @swagger_serializer_method(serializers.URLField())
    def get_url(self, exported: Any) -> str | None:
        # An ExportedFile (backend/selectors/privacy.py).
        return absolute_url(self, exported.url)


class ExportSignInSerializer(serializers.Serializer):
    created_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField()
    revoked = serializers.BooleanField(help_text="Signed out, rotated or revoked.")


class ExportReviewSerializer(serializers.ModelSerializer):
    class Meta:
        model = Review
        fields = [
            "id",
            "booking",
            "session",
            "rating",
            "comment",
            "reply",
            "is_hidden",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ExportWebhookSerializer(serializers.ModelSerializer):
    """A webhook subscription, without its signing secret."""

    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "events", "description", "is_active", "created_at"]
        read_only_fields = fields


class ExportSerializer(serializers.Serializer):
    """`GET /api/users/me/export/`: everything held about the caller."""

    generated_at = serializers.DateTimeField()
    profile = ExportProfileSerializer(source="user")
    bookings = ExportBookingSerializer(many=True, help_text="Oldest first, with events, payments.")
    sessions = ExportOwnSessionSerializer(many=True, help_text="Sessions you created (creators).")
    files = ExportStoredFileSerializer(many=True, help_text="Objects you uploaded.")
    reviews = ExportReviewSerializer(many=True, help_text="Reviews you wrote, hidden ones too.")
    sign_ins = ExportSignInSerializer(many=True, help_text="Refresh tokens issued to you.")
    webhooks = ExportWebhookSerializer(many=True, help_text="Your webhook subscriptions.")
