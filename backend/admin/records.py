"""Records support reads, never edits."""

from django.contrib import admin

from backend.admin.common import ViewOnlyAdmin
from backend.models import OutboxMessage, Reminder, StoredFile, StripeEvent


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
