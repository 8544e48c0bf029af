"""Records support reads, never edits."""

from django.contrib import admin

from backend.admin.common import ViewOnlyAdmin
from backend.models import (
    OutboxMessage,
    Reminder,
    StoredFile,
    StripeEvent,
    WebhookDelivery,
    WebhookSubscription,
)


@admin.register(StripeEvent)
class StripeEventAdmin(ViewOnlyAdmin):
    """Which webhook events arrived. Deleting one would let a redelivery apply twice."""

    list_display = ("event_id", "type", "received_at")
    list_filter = ("type", "received_at")
    search_fields = ("event_id", "type")


@admin.register(StoredFile)
class StoredFileAdmin(ViewOnlyAdmin):
    """Who owns which object in storage. Uploads and deletions go through the files service,
    which also writes or deletes the object itself; an edited row would break ownership."""

    list_display = ("key", "owner", "purpose", "size", "content_type", "created_at")
    list_filter = ("purpose", "content_type", "created_at")
    search_fields = ("key", "owner__username")
    list_select_related = ("owner",)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ViewOnlyAdmin):
    """Background work asked for and what became of it (backend/services/outbox.py). Rows change
    only through the outbox: an edited row could send an e-mail or a refund twice."""

    list_display = ("id", "task", "effect_key", "status", "attempts", "available_at", "done_at")
    list_filter = ("status", "task")
    search_fields = ("effect_key",)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ViewOnlyAdmin):
    """Integrators' endpoints (backend/services/webhooks.py); owners manage them over the API.
    The signing secret is never shown."""

    list_display = ("id", "owner", "url", "is_active", "disabled_reason", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "owner__username")
    list_select_related = ("owner",)
    exclude = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ViewOnlyAdmin):
    """The delivery log (30 days): one event for one subscription and its last attempt."""

    list_display = (
        "id",
        "subscription",
        "event",
        "status",
        "attempts",
        "response_status",
        "last_attempt_at",
        "next_attempt_at",
    )
    list_filter = ("status",)
    search_fields = ("event__public_id", "subscription__url")
    list_select_related = ("subscription", "event")


@admin.register(Reminder)
class ReminderAdmin(ViewOnlyAdmin):
    """Which reminders were claimed (and so sent) for which start (backend/services/reminders.py).
    A deleted or edited row would let the next run send that reminder again."""

    list_display = ("id", "session", "booking", "offset_minutes", "start_time", "created_at")
    list_filter = ("offset_minutes", "created_at")
    search_fields = ("session__title",)
    # Booking.__str__ names its user and session.
    list_select_related = ("session", "booking__user", "booking__session")
    raw_id_fields = ("session", "booking")
