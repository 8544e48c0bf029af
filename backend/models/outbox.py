from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """A task asked for by a database change, committed in the same transaction.

    `effect_key` names the effect (one e-mail of one kind for one booking, one refund of one
    booking): unique, so asking twice for the same effect stores one row, and the row's `done`
    status is the record that the effect happened. See backend/services/outbox.py.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # committed, not (yet) on the broker, or waiting to retry
        PUBLISHED = "published", "Published"  # on the broker
        RUNNING = "running", "Running"  # a worker has it until claimed_until
        DONE = "done", "Done"
        FAILED = "failed", "Failed"  # gave up: a permanent error or out of attempts

    task = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict)
    effect_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(null=True, blank=True)  # null: until it works
    created_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "outbox_messages"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "available_at"], name="outbox_status_available_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.effect_key} ({self.status})"


class PeriodicRun(models.Model):
    """One run of a periodic job in one period: two beats (by mistake) cannot both run it."""

    job = models.CharField(max_length=100)
    slot = models.BigIntegerField()  # int(epoch seconds / the job's interval)
    started_at = models.DateTimeField(auto_now_add=True)
    result = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "periodic_runs"
        constraints = [
            models.UniqueConstraint(fields=["job", "slot"], name="periodic_run_one_per_slot")
        ]

    def __str__(self) -> str:
        return f"{self.job} #{self.slot}"
