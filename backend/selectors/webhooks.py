"""Webhook reads: a user's own subscriptions and their delivery log (others' are 404)."""

from django.db.models import QuerySet

from backend.exceptions import NotFound
from backend.models import User, WebhookDelivery, WebhookSubscription


def webhook_subscriptions_of(*, owner: User) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(owner=owner).order_by("id")


def webhook_subscription_of(*, owner: User, subscription_id: int) -> WebhookSubscription:
    subscription = webhook_subscriptions_of(owner=owner).filter(pk=subscription_id).first()
    if subscription is None:
        raise NotFound("Webhook not found.")
    return subscription


def webhook_deliveries_of(*, subscription: WebhookSubscription) -> QuerySet[WebhookDelivery]:
    """Newest first, with the event each one carries (one query per page)."""
    return (
        WebhookDelivery.objects.filter(subscription=subscription)
        .select_related("event")
        .order_by("-id")
    )
