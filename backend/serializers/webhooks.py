"""Outgoing webhook shapes (CONTRACT.md "Outgoing webhooks"). The secret is in the answer to
the creation only."""

from rest_framework import serializers

from backend.models import WebhookDelivery, WebhookSubscription
from backend.models.webhooks import EVENT_TYPES
from backend.serializers.catalog import UtcDateTimeField
from backend.serializers.common import page_of

EVENTS_HELP = "Event types to receive: " + ", ".join(EVENT_TYPES) + "."


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    created_at = UtcDateTimeField(read_only=True)
    updated_at = UtcDateTimeField(read_only=True)
    disabled_at = UtcDateTimeField(read_only=True, allow_null=True)
    events = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "url",
            "events",
            "description",
            "is_active",
            "disabled_reason",
            "disabled_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="Signs every delivery. Shown only in this answer: keep it."
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookSubscriptionWriteSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES),
        min_length=1,
        max_length=len(EVENT_TYPES),
        help_text=EVENTS_HELP,
    )
    description = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class WebhookSubscriptionUpdateSerializer(WebhookSubscriptionWriteSerializer):
    is_active = serializers.BooleanField(
        required=False, help_text="false stops deliveries; true switches it back on (after 410)."
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.CharField(source="event.public_id", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    created_at = UtcDateTimeField(read_only=True)
    last_attempt_at = UtcDateTimeField(read_only=True, allow_null=True)
    next_attempt_at = UtcDateTimeField(read_only=True, allow_null=True)
    delivered_at = UtcDateTimeField(read_only=True, allow_null=True)
    response_body = serializers.CharField(
        read_only=True, help_text="The first 1024 bytes of the last answer's body, as text."
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "response_status",
            "response_time_ms",
            "response_body",
            "error",
            "created_at",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
        ]
        read_only_fields = fields


WebhookSubscriptionPageSerializer = page_of(
    WebhookSubscriptionSerializer, "WebhookSubscriptionPage"
)
WebhookDeliveryPageSerializer = page_of(WebhookDeliverySerializer, "WebhookDeliveryPage")
