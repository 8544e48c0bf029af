from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Func

from backend.timezones import DEFAULT_TIMEZONE, TIMEZONE_MAX_LENGTH, validate_timezone


class MinutesAsDuration(Func):
    """An integer number of minutes as a duration that can be added to a datetime.

    Django cannot multiply a column by a timedelta on SQLite, and each backend stores durations
    differently: PostgreSQL as an interval, SQLite as a count of microseconds.
    """

    output_field = DurationField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="make_interval(mins => %(expressions)s)")

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="(%(expressions)s * 60000000)")


def session_end_time(prefix: str = "") -> ExpressionWrapper:
    """`start_time + duration_minutes` in SQL (`end_time` is the Python property on Session).

    `prefix` ("session__") applies it from a related model.
    """
    return ExpressionWrapper(
        F(f"{prefix}start_time") + MinutesAsDuration(F(f"{prefix}duration_minutes")),
        output_field=DateTimeField(),
    )


class SessionQuerySet(models.QuerySet):
    def owned_by(self, user) -> "SessionQuerySet":
        """A creator's own sessions (the only ones they may change or see the attendees of)."""
        return self.filter(creator_id=user.pk)


class Session(models.Model):
    """A bookable session published by a creator (called `catalog` in the code's domains)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        CANCELLED = "cancelled", "Cancelled"

    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sessions"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=10000)
    category = models.CharField(max_length=50, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    duration_minutes = models.PositiveIntegerField()
    start_time = models.DateTimeField()
    capacity = models.PositiveIntegerField()
    location = models.CharField(max_length=255, blank=True)
    is_online = models.BooleanField(default=False)
    meeting_url = models.URLField(blank=True, max_length=500)
    image = models.FileField(upload_to="sessions/", blank=True, max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # The zone its times are meant in (IANA); `start_time` stays an instant.
    timezone = models.CharField(
        max_length=TIMEZONE_MAX_LENGTH, default=DEFAULT_TIMEZONE, validators=[validate_timezone]
    )
    # An occurrence of a recurring series, and which one (1-based, in date order); null for a
    # one-off session. Editing or cancelling one occurrence on its own keeps the link.
    series = models.ForeignKey(
        "backend.SessionSeries",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sessions",
    )
    series_position = models.PositiveSmallIntegerField(null=True, blank=True)
    # Cancellation tiers `[{"hours_before", "refund_percent"}, ...]` (validated by
    # SessionWriteSerializer); null follows the platform default (booking_rules.refund_policy_of).
    refund_policy = models.JSONField(null=True, blank=True)
    # Grows by one each time the start, duration or place changes: the SEQUENCE of the
    # session's calendar events (clients replace an imported event when it grows).
    schedule_sequence = models.PositiveIntegerField(default=0)
    # When the start time last moved (null: never). Reminders whose moment had already passed
    # then are not sent for the new time; the attendees got the "new time" e-mail instead.
    rescheduled_at = models.DateTimeField(null=True, blank=True)
    # Runs only if enough people book (CONTRACT.md, "Sessions that run only if enough people
    # book"): null `min_attendees` always runs. Until `decision_at` paid bookings save a card
    # and are charged only when the minimum of committed seats is reached.
    min_attendees = models.PositiveIntegerField(null=True, blank=True)
    decision_at = models.DateTimeField(null=True, blank=True)
    # The decision, made once under the session lock (services/minimum.py): `decided_at` set is
    # the claim that keeps a second beat or worker from deciding again.
    decided_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(
        max_length=16, blank=True, choices=[("runs", "Runs"), ("called_off", "Called off")]
    )
    # Why it was cancelled when the system did it ("minimum_not_reached"); blank otherwise.
    cancel_reason = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        db_table = "sessions"
        ordering = ["start_time", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="session_price_gte_0"),
            models.CheckConstraint(
                condition=models.Q(capacity__gte=1), name="session_capacity_gte_1"
            ),
            models.CheckConstraint(
                condition=models.Q(duration_minutes__gte=1), name="session_duration_gt_0"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "published", "cancelled"]),
                name="session_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(min_attendees__isnull=True) | models.Q(min_attendees__gte=1),
                name="session_min_attendees_gte_1",
            ),
            models.UniqueConstraint(
                fields=["series", "series_position"],
                condition=models.Q(series__isnull=False),
                name="session_unique_series_position",
            ),
            models.CheckConstraint(
                condition=models.Q(series__isnull=True, series_position__isnull=True)
                | models.Q(series__isnull=False, series_position__gte=1),
                name="session_series_position_set",
            ),
        ]
        indexes = [
            # The catalog: published sessions in catalog order (start time, then id), so a page
            # is read off the index without a sort, even deep pages (bench/growth.py).
            models.Index(fields=["status", "start_time", "id"], name="session_status_start_id_idx"),
            models.Index(fields=["status", "category", "start_time"], name="session_category_idx"),
            models.Index(fields=["status", "price"], name="session_status_price_idx"),
            # The decision job: sessions whose minimum is still to be decided, by decision time.
            models.Index(
                fields=["decision_at"],
                name="session_undecided_idx",
                condition=models.Q(min_attendees__isnull=False, decided_at__isnull=True),
            ),
            # A creator's own sessions.
            models.Index(fields=["creator", "-start_time"], name="session_creator_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def end_time(self):
        return self.start_time + timedelta(minutes=self.duration_minutes)

    @property
    def has_minimum(self) -> bool:
        return self.min_attendees is not None

    @property
    def is_free(self) -> bool:
        return self.price == 0
