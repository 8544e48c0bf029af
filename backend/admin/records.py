"""Records support reads, never edits."""

from django.contrib import admin

from backend.admin.common import ViewOnlyAdmin
from backend.models import OutboxMessage, StoredFile, StripeEvent


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
