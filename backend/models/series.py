from datetime import datetime

from django.conf import settings
from django.db import models

from backend.timezones import TIMEZONE_MAX_LENGTH, validate_timezone

# An RRULE line is short; this bounds what is stored and parsed.
RRULE_MAX_LENGTH = 500


class SessionSeries(models.Model):
    """A recurring session: the rule its dates came from, in the creator's wall-clock time.

    Each date is an ordinary Session (`Session.series`, `Session.series_position`), so booking,
    locking, cancelling and refunds work on occurrences unchanged. The series keeps the rule as
    sent, the zone and the local start (a wall-clock time, not an instant: 18:30 in Berlin
    stays 18:30 across DST changes), and how many dates the rule gave.
    """

    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="session_series"
    )
    rrule = models.CharField(max_length=RRULE_MAX_LENGTH)
    timezone = models.CharField(max_length=TIMEZONE_MAX_LENGTH, validators=[validate_timezone])
    # The wall-clock start in `timezone`, as two naive parts (a DateTimeField would be an
    # instant under USE_TZ).
    local_start_date = models.DateField()
    local_start_time = models.TimeField()
    occurrence_count = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "session_series"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(occurrence_count__gte=1), name="series_occurrences_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rrule} from {self.local_start.isoformat()} {self.timezone}"

    @property
    def local_start(self) -> datetime:
        """The naive wall-clock start in `timezone`."""
        return datetime.combine(self.local_start_date, self.local_start_time)
