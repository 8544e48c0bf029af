from django.db import models


class Reminder(models.Model):
    """One reminder e-mail, claimed before it is sent: the row is the "exactly once".

    An attendee's reminder has a booking; the creator's "starting soon" has none. `start_time`
    is the session start the reminder was for, so a session that moves re-arms its reminders
    (a new start, a new row) while a second run for the same start finds the row taken.
    """

    session = models.ForeignKey(
        "backend.Session", on_delete=models.CASCADE, related_name="reminders"
    )
    booking = models.ForeignKey(
        "backend.Booking", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    offset_minutes = models.PositiveIntegerField()
    start_time = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "reminders"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["booking", "offset_minutes", "start_time"],
                condition=models.Q(booking__isnull=False),
                name="reminder_once_per_booking_offset_start",
            ),
            models.UniqueConstraint(
                fields=["session", "offset_minutes", "start_time"],
                condition=models.Q(booking__isnull=True),
                name="reminder_creator_once_per_session_offset_start",
            ),
        ]

    def __str__(self) -> str:
        who = f"booking #{self.booking_id}" if self.booking_id else "creator"
        return f"{who}, session #{self.session_id}, {self.offset_minutes} min before"
