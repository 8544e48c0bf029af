"""Users: the marketplace fields next to Django's own, and the GDPR account deletion."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from backend.admin.common import staff_user
from backend.exceptions import DomainError
from backend.models import User
from backend.services.privacy import is_deleted, user_delete


@admin.action(
    description="Delete account: cancel bookings, delete files, anonymise", permissions=["change"]
)
def delete_accounts(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]
) -> None:
    """The same deletion as `DELETE /api/users/me/`, for each selected user; each row reported.

    A refused row (a creator with booked upcoming sessions, Stripe or storage down) changes
    nothing of that user and does not stop the others.
    """
    actor = staff_user(request)
    for user in queryset.order_by("pk"):
        label = f"{user.username} (#{user.pk})"
        if user.pk == actor.pk:
            modeladmin.message_user(
                request,
                f"{label}: not deleted: you cannot delete your own account here.",
                messages.ERROR,
            )
            continue
        if is_deleted(user):
            modeladmin.message_user(request, f"{label}: already deleted.", messages.INFO)
            continue
        try:
            deletion = user_delete(user=user)
        except DomainError as error:
            modeladmin.message_user(
                request, f"{label}: not deleted: {error.message}", messages.ERROR
            )
            continue
        kept = (
            f", {len(deletion.bookings_kept)} paid booking(s) inside the cancellation window kept"
            if deletion.bookings_kept
            else ""
        )
        modeladmin.message_user(
            request,
            f"{label}: deleted as {user.username}: "
            f"{len(deletion.bookings_cancelled)} booking(s) cancelled{kept}, "
            f"{len(deletion.sessions_closed)} session(s) closed, "
            f"{deletion.files_deleted} file(s) deleted, "
            f"{deletion.tokens_revoked} token(s) revoked.",
            messages.SUCCESS,
        )


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "role",
        "oauth_provider",
        "date_joined",
    )
    list_filter = ("role", "oauth_provider", "is_staff", "is_active")
    search_fields = ("username", "email", "first_name", "last_name", "oauth_uid")
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Marketplace", {"fields": ("role", "bio", "avatar", "avatar_url")}),
        ("OAuth", {"fields": ("oauth_provider", "oauth_uid")}),
    )
    # Uploads go through the API, which validates and re-encodes images; not through the admin.
    readonly_fields = ("oauth_provider", "oauth_uid", "avatar", "last_login", "date_joined")
    actions = [delete_accounts]

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # A hard delete would orphan the user's objects in storage and is refused anyway for
        # anyone with bookings (PROTECT): accounts leave through `delete_accounts`.
        return False
