"""Users: the marketplace fields next to Django's own."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from backend.models import User


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
