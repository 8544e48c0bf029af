"""Series shapes: what a creator sends to create or change a series, and the series itself."""

from datetime import datetime

from rest_framework import serializers

from backend.models import Session, SessionSeries
from backend.models.series import RRULE_MAX_LENGTH
from backend.serializers.catalog import SessionSerializer, SessionWriteSerializer, UtcDateTimeField
from backend.serializers.common import TimeZoneField

LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
SERIES_STATUSES = [
    (Session.Status.DRAFT.value, Session.Status.DRAFT.label),
    (Session.Status.PUBLISHED.value, Session.Status.PUBLISHED.label),
]


def local_iso(value: datetime) -> str:
    """`2027-01-04T18:30` (seconds only when there are some)."""
    return value.isoformat(timespec="seconds" if value.second else "minutes")


class LocalDateTimeField(serializers.Field):
    """A wall-clock date and time without an offset: `2027-01-04T18:30` (seconds optional).

    It means that time in the series' `timezone`; an offset or a `Z` would contradict the zone
    and is a 400.
    """

    default_error_messages = {
        "invalid": "Use a local date-time without offset, for example 2027-01-04T18:30.",
    }

    class Meta:
        swagger_schema_fields = {"format": "local-date-time", "example": "2027-01-04T18:30"}

    def to_internal_value(self, data) -> datetime:
        if isinstance(data, str) and len(data) <= len("2027-01-04T18:30:00"):
            for fmt in LOCAL_FORMATS:
                try:
                    return datetime.strptime(data, fmt)
                except ValueError:
                    continue
        self.fail("invalid")

    def to_representation(self, value: datetime) -> str:
        return local_iso(value)


class SessionSeriesCreateSerializer(SessionWriteSerializer):
    """A session's fields (without `start_time`) plus the recurrence: `timezone` (IANA),
    `local_start` (wall clock in that zone) and `rrule` (RFC 5545, COUNT or UNTIL, at most 52
    dates). The rule itself is checked when it is expanded (services/series.py)."""

    start_time = None  # type: ignore[assignment]  # DRF: None removes the field; the rule gives it
    timezone = TimeZoneField(help_text="IANA name, e.g. Europe/Berlin.")
    local_start = LocalDateTimeField(
        help_text="The first date's wall-clock start in `timezone`, e.g. 2027-01-04T18:30."
    )
    rrule = serializers.CharField(
        max_length=RRULE_MAX_LENGTH,
        help_text="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO;COUNT=8 (COUNT or UNTIL required).",
    )
    status = serializers.ChoiceField(choices=SERIES_STATUSES, required=False)

    class Meta(SessionWriteSerializer.Meta):
        fields = [
            *(name for name in SessionWriteSerializer.Meta.fields if name != "start_time"),
            "local_start",
            "rrule",
        ]
        ref_name = "SessionSeriesCreate"


class SessionSeriesUpdateSerializer(SessionWriteSerializer):
    """PATCH: any session field but the start and the zone, or a new `local_start`.

    `instance` is one upcoming date of the series, so the cross-field checks (location for an
    in-person session, whole prices) look at the merged result as for a session PATCH.
    """

    start_time = None  # type: ignore[assignment]  # DRF: None removes an inherited field
    timezone = None  # type: ignore[assignment]
    local_start = LocalDateTimeField(
        required=False,
        help_text=(
            "A new wall-clock start: every upcoming date moves by the same wall-clock "
            "difference (e.g. 18:30 -> 19:00, or Monday -> Tuesday)."
        ),
    )
    status = serializers.ChoiceField(choices=SERIES_STATUSES, required=False)

    class Meta(SessionWriteSerializer.Meta):
        fields = [
            *(
                name
                for name in SessionWriteSerializer.Meta.fields
                if name not in ("start_time", "timezone")
            ),
            "local_start",
        ]
        ref_name = "SessionSeriesUpdate"

    def validate(self, attrs: dict) -> dict:
        if isinstance(self.initial_data, dict):
            fixed = [
                name for name in ("rrule", "timezone", "start_time") if name in self.initial_data
            ]
            if fixed:
                raise serializers.ValidationError(
                    {
                        name: [
                            "A series' rule and zone cannot change (create a new series); "
                            "move its dates with local_start, or one date through its session."
                        ]
                        for name in fixed
                    }
                )
        return super().validate(attrs)


class SessionSeriesSerializer(serializers.ModelSerializer):
    """A series and every one of its dates (started and cancelled ones too), first to last.

    Needs `series_get_for_creator()` (the dates come prefetched as `occurrences`).
    """

    local_start = LocalDateTimeField(read_only=True)
    occurrence_count = serializers.IntegerField(read_only=True)
    created_at = UtcDateTimeField(read_only=True)
    updated_at = UtcDateTimeField(read_only=True)
    sessions = SessionSerializer(source="occurrences", many=True, read_only=True)

    class Meta:
        model = SessionSeries
        fields = [
            "id",
            "rrule",
            "timezone",
            "local_start",
            "occurrence_count",
            "created_at",
            "updated_at",
            "sessions",
        ]
        read_only_fields = fields
