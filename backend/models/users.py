from django.contrib.auth.models import AbstractUser
from django.db import models

from backend.timezones import DEFAULT_TIMEZONE, TIMEZONE_MAX_LENGTH, validate_timezone


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
    # The zone the user reads times in (IANA). Not in the API yet: issue 17 exposes it.
    timezone = models.CharField(
        max_length=TIMEZONE_MAX_LENGTH, default=DEFAULT_TIMEZONE, validators=[validate_timezone]
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
