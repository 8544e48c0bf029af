"""Series writes: create a recurring session, change or cancel the dates still to come.

Every occurrence is an ordinary Session, so these services lean on the catalog service for each
date (`session_update` checks transitions and capacity under the session lock, and cancels
through the booking service, which refunds paid bookings). What is the series' own: expanding
the rule in the creator's wall-clock time (backend/recurrence.py), creating all dates in one
INSERT, shifting wall-clock times across DST, and telling attendees when their date moves.

Locks: the series row first (so two edits of one series queue up), then each session in id
order, inside session_update. Booking writes never lock a series, so nothing waits the other
way round.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone as dj_timezone

from backend import catalog_cache, recurrence
from backend.exceptions import Conflict, NotFound, ValidationFailed
from backend.models import Session, SessionSeries, User
from backend.services.catalog import UPDATABLE_FIELDS, session_update
from backend.services.locking import lock_session
from backend.services.payouts import check_can_publish
from backend.timezones import is_valid_timezone, zone

Status = Session.Status

# What a series PATCH may change on its upcoming dates: a session's fields, except the start
# (a series moves by `local_start`) and the zone (the rule's wall-clock times are meant there).
SERIES_UPDATABLE_FIELDS = (UPDATABLE_FIELDS - {"start_time", "timezone"}) | {"local_start"}


def _check_timezone(name: str) -> None:
    if not is_valid_timezone(name):
        raise ValidationFailed(
            "Unknown time zone: use an IANA name such as Europe/Berlin.", code="invalid_timezone"
        )


@transaction.atomic
def series_create(
    *,
    creator: User,
    rrule: str,
    timezone: str,
    local_start: datetime,
    title: str,
    price: Decimal,
    duration_minutes: int,
    capacity: int,
    currency: str = "USD",
    description: str = "",
    category: str = "",
    location: str = "",
    is_online: bool = False,
    meeting_url: str = "",
    status: str = Status.DRAFT,
) -> SessionSeries:
    """Creates the series and all its dates, in a fixed number of queries (one bulk INSERT).

    `local_start` is naive: the wall-clock start in `timezone`. Raises ValidationFailed with a
    code for a rule the series cannot have (recurrence.expand); nothing is created then.
    """
    if status == Status.CANCELLED:
        raise Conflict("A new series cannot start out cancelled.", code="invalid_status")
    if status == Status.PUBLISHED:
        check_can_publish(price=price, creator_id=creator.pk)
    _check_timezone(timezone)
    expansion = recurrence.expand(
        rule_text=rrule, local_start=local_start, zone=zone(timezone), now=dj_timezone.now()
    )
    series = SessionSeries.objects.create(
        creator=creator,
        rrule=expansion.rrule,
        timezone=timezone,
        local_start_date=local_start.date(),
        local_start_time=local_start.time().replace(microsecond=0),
        occurrence_count=len(expansion.occurrences),
    )
    Session.objects.bulk_create(
        [
            Session(
                creator=creator,
                series=series,
                series_position=occurrence.position,
                timezone=timezone,
                title=title,
                description=description,
                category=category,
                price=price,
                currency=currency,
                duration_minutes=duration_minutes,
                start_time=occurrence.start_time,
                capacity=capacity,
                location=location,
                is_online=is_online,
                meeting_url=meeting_url,
                status=status,
            )
            for occurrence in expansion.occurrences
        ]
    )
    catalog_cache.catalog_changed(session_id=None)  # new entries in the lists
    return series


def _lock_own_series(*, series_id: int, actor: User) -> SessionSeries:
    """Locks the actor's own series; anyone else's is 404 (never confirm it exists)."""
    series = SessionSeries.objects.select_for_update().filter(pk=series_id).first()
    if series is None or series.creator_id != actor.pk:
        raise NotFound("Series not found.")
    return series


def _upcoming_occurrence_ids(series: SessionSeries) -> list[int]:
    """The dates a series change applies to: not started, not cancelled; in id (lock) order."""
    return list(
        series.sessions.filter(start_time__gt=dj_timezone.now())
        .exclude(status=Status.CANCELLED)
        .order_by("id")
        .values_list("id", flat=True)
    )


def _shifted_start(start_time: datetime, *, delta: timedelta, timezone_name: str) -> datetime:
    """`start_time` moved by a wall-clock `delta` in the series' zone (DST-correct)."""
    tz = zone(timezone_name)
    local = start_time.astimezone(tz).replace(tzinfo=None) + delta
    return local.replace(tzinfo=tz).astimezone(zone("UTC"))


@transaction.atomic
def series_update(*, series_id: int, actor: User, data: dict[str, Any]) -> SessionSeries:
    """Applies validated `data` to every date of the series that has not started.

    Started and cancelled dates are left alone. A price change applies to new bookings only
    (bookings keep their amount). `local_start` (naive) moves the series' wall-clock start and
    every upcoming date by the same wall-clock difference, so 18:30 stays 18:30 across DST;
    attendees of a moved date with an active booking are e-mailed. Any refusal (a capacity
    below seats taken, a date moved into the past, ...) changes nothing.
    """
    unknown = set(data) - SERIES_UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    series = _lock_own_series(series_id=series_id, actor=actor)
    if not data:
        return series
    occurrence_ids = _upcoming_occurrence_ids(series)
    if not occurrence_ids:
        raise Conflict(
            "Every date of this series has started or is cancelled; nothing left to change.",
            code="series_finished",
        )
    fields = {name: value for name, value in data.items() if name != "local_start"}
    new_local_start: datetime | None = data.get("local_start")
    delta = new_local_start - series.local_start if new_local_start is not None else timedelta(0)
    now = dj_timezone.now()
    horizon = now + timedelta(days=recurrence.HORIZON_DAYS)
    for session_id in occurrence_ids:
        changes = dict(fields)
        if delta:
            # Read the start under the lock session_update takes again (same transaction).
            previous_start = lock_session(session_id=session_id).start_time
            new_start = _shifted_start(previous_start, delta=delta, timezone_name=series.timezone)
            if not now < new_start <= horizon:
                raise ValidationFailed(
                    f"Moved by {delta}, a date would start at {new_start.isoformat()}: "
                    f"not in the future, or beyond {recurrence.HORIZON_DAYS // 365} years.",
                    code="start_time_past" if new_start <= now else "occurrence_too_far",
                )
            changes["start_time"] = new_start
        # A moved date tells its attendees and frees their cancellation (session_update).
        session_update(session_id=session_id, actor=actor, data=changes)
    if new_local_start is not None and new_local_start != series.local_start:
        series.local_start_date = new_local_start.date()
        series.local_start_time = new_local_start.time().replace(microsecond=0)
    series.save(update_fields=["local_start_date", "local_start_time", "updated_at"])
    return series


@transaction.atomic
def series_cancel(*, series_id: int, actor: User) -> SessionSeries:
    """Cancels every date that has not started, through the catalog's session cancellation
    (which cancels their bookings and refunds the paid ones). Started dates stay as they are;
    calling it again cancels nothing more and refunds nothing twice.
    """
    series = _lock_own_series(series_id=series_id, actor=actor)
    for session_id in _upcoming_occurrence_ids(series):
        session_update(session_id=session_id, actor=actor, data={"status": Status.CANCELLED})
    series.save(update_fields=["updated_at"])
    return series
