from django.conf import settings
from django.db import models


class StoredFile(models.Model):
    """An uploaded object in storage and who owns it."""

    class Purpose(models.TextChoices):
        AVATAR = "avatar", "Avatar"
        SESSION_IMAGE = "session_image", "Session image"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stored_files"
    )
    key = models.CharField(max_length=255, unique=True)
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    session = models.ForeignKey(
        "backend.Session",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="stored_files",
    )
    size = models.PositiveIntegerField()
    content_type = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "stored_files"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "purpose"], name="storedfile_owner_idx")]

    def __str__(self) -> str:
        return self.key
