import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models

from backend.timezones import DEFAULT_TIMEZONE, TIMEZONE_MAX_LENGTH, validate_timezone


def new_calendar_token() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class User(AbstractUser):
    class Role(models.TextChoices):
        USER = "user", "User"
        CREATOR = "creator", "Creator"

    class OAuthProvider(models.TextChoices):
        GOOGLE = "google", "Google"
        GITHUB = "github", "GitHub"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    bio = models.TextField(blank=True, max_length=2000)
    # An uploaded avatar (storage key) wins over the provider's picture URL.
    avatar = models.FileField(upload_to="avatars/", blank=True, max_length=255)
    avatar_url = models.URLField(blank=True, max_length=500)
    # NULL (not "") for accounts without a provider: CONTRACT.md exposes it as null.
    oauth_provider = models.CharField(  # noqa: DJ001
        max_length=16, choices=OAuthProvider.choices, null=True, blank=True
    )
    oauth_uid = models.CharField(max_length=255, blank=True)
    # The zone the user reads times in (IANA): every e-mail to them states times in it.
    timezone = models.CharField(
        max_length=TIMEZONE_MAX_LENGTH, default=DEFAULT_TIMEZONE, validators=[validate_timezone]
    )
    # The secret in the URL of the user's calendar feed (GET /api/calendar/<token>.ics, no JWT:
    # calendar apps cannot send one). Random, not derived from anything; rotating it replaces
    # it, so the old URL stops working.
    calendar_token = models.CharField(
        max_length=64,
        unique=True,
        default=new_calendar_token,
        help_text="The secret of the calendar feed's URL (`calendar_feed_url` in users/me/).",
    )

    class Meta:
        db_table = "users"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["user", "creator"]), name="user_role_valid"
            ),
            models.UniqueConstraint(
                fields=["oauth_provider", "oauth_uid"],
                condition=~models.Q(oauth_uid=""),
                name="user_unique_oauth_identity",
            ),
        ]

    @property
    def is_creator(self) -> bool:
        return self.role == self.Role.CREATOR

    @property
    def avatar_link(self) -> str | None:
        if self.avatar:
            return self.avatar.url
        return self.avatar_url or None
