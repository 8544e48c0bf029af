"""Outgoing webhooks: who listens (subscriptions), what happened (events), and each attempt to
tell one listener about one event (deliveries, the delivery log). See services/webhooks.py."""

from django.conf import settings
from django.db import models

# What a subscription can ask for (CONTRACT.md "Outgoing webhooks").
EVENT_TYPES = (
    "booking.created",
    "booking.confirmed",
    "booking.cancelled",
    "booking.rescheduled",
    "booking.refunded",
    "session.published",
    "session.cancelled",
    "review.created",
    "waitlist.offered",
)


class WebhookSubscription(models.Model):
    """An integrator's endpoint. A creator's sees events of their own sessions; staff's see all.

    `secret` signs every delivery (HMAC-SHA256); it is stored as is because signing needs it,
    and the API shows it once, in the answer to the creation.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)  # event type names, e.g. ["booking.created"]
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    # Why it was switched off by us (the receiver answered 410 Gone); "" when active or by hand.
    disabled_reason = models.CharField(max_length=200, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "webhook_subscriptions"
        ordering = ["id"]
        indexes = [models.Index(fields=["is_active"], name="webhook_sub_active_idx")]

    def __str__(self) -> str:
        return f"webhook #{self.pk} {self.url}"


class WebhookEvent(models.Model):
    """One thing that happened, with its payload as of that moment (the same for every
    subscriber). `public_id` is the payload's `id` and the `Webhook-Id` header: receivers
    de-duplicate on it."""

    public_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    # The creator whose session it concerns: their subscriptions (and staff's) receive it.
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # Events with one key ("booking:42") reach a subscriber in the order they happened.
    ordering_key = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "webhook_events"
        ordering = ["id"]
        indexes = [models.Index(fields=["created_at"], name="webhook_event_created_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"


class WebhookDelivery(models.Model):
    """One event for one subscription: its state and its last attempt (the delivery log)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # not delivered yet; retried until the window ends
        DELIVERED = "delivered", "Delivered"  # the receiver answered 2xx
        FAILED = "failed", "Failed"  # gave up: out of time, refused target, or 410
        CANCELLED = "cancelled", "Cancelled"  # the subscription was switched off meanwhile

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_time_ms = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)  # the first bytes, as text
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        db_table = "webhook_deliveries"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "subscription"], name="webhook_delivery_one_per_event"
            )
        ]
        indexes = [
            models.Index(fields=["subscription", "status"], name="webhook_delivery_sub_idx"),
            models.Index(fields=["created_at"], name="webhook_delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} ({self.status})"
