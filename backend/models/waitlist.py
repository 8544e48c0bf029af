from django.conf import settings
from django.db import models


class WaitlistEntry(models.Model):
    """A user waiting for `seats` of a full session (CONTRACT.md, "Waitlist").

    The list is served oldest first (created_at, id). `waiting` entries are in the line;
    `offered` ones hold `booking`, a pending booking whose hold ends at `offer_expires_at`;
    `booked`, `expired` and `left` are final. Written only by backend/services/waitlist.py,
    always under the session's row lock.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        OFFERED = "offered", "Offered"
        BOOKED = "booked", "Booked"
        EXPIRED = "expired", "Expired"
        LEFT = "left", "Left"

    OPEN_STATUSES = (Status.WAITING, Status.OFFERED)

    session = models.ForeignKey(
        "backend.Session", on_delete=models.PROTECT, related_name="waitlist_entries"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="waitlist_entries"
    )
    seats = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    # The offer's booking (pending until paid; confirmed at once for a free session).
    booking = models.OneToOneField(
        "backend.Booking",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="waitlist_entry",
    )
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "waitlist_entries"
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(seats__gte=1), name="waitlist_seats_gte_1"),
            models.CheckConstraint(
                condition=models.Q(status__in=["waiting", "offered", "booked", "expired", "left"]),
                name="waitlist_status_valid",
            ),
            # Behind the service's session lock: one open entry per user and session.
            models.UniqueConstraint(
                fields=["user", "session"],
                condition=models.Q(status__in=["waiting", "offered"]),
                name="waitlist_one_open_per_user_session",
            ),
        ]
        indexes = [
            models.Index(
                fields=["session", "status", "created_at"], name="waitlist_session_status_idx"
            ),
            models.Index(fields=["user", "-created_at"], name="waitlist_user_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} user {self.user_id} waits for session {self.session_id}: {self.status}"
