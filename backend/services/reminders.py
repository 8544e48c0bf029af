"""Reminders before a session starts, each sent exactly once (CONTRACT.md, "Time zones,
reminders, calendar feed").

At every offset of REMINDER_OFFSETS_MINUTES before the start, each confirmed attendee gets one
e-mail; at the smallest offset the creator gets one "starting soon" with the attendee count.

Exactly once, even with two workers or two beats running the job at the same moment: a
reminder is claimed by inserting its `Reminder` row (unique per booking, offset and start
time; per session, offset and start time for the creator's), in the same transaction as the
outbox row of its e-mail. A second run finds the row taken and sends nothing; a run that dies
before its commit leaves neither row, so the next run sends it. The outbox's own effect key
(`email:reminder:booking:<id>:<offset>:<start>`) is the second line of defence.

Rules, checked under the booking's row lock (so a cancellation cannot slip in between):
- only confirmed bookings of published sessions that have not started;
- a reminder whose moment (start - offset) came before the booking was confirmed, or before
  the session last moved, is skipped: the attendee was told at that point anyway;
- a reminder sent late (the job did not run for a while) goes out only while no smaller offset
  is due: nobody gets "tomorrow" and "in 1 hour" in the same minute;
- a session that moves re-arms its reminders: the claim names the start time it was for.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from backend.exceptions import NotFound
from backend.models import Booking, Reminder, Session
from backend.services import notifications
from backend.services.locking import lock_booking, lock_session

logger = logging.getLogger(__name__)

# Per offset and run: a run that finds more leaves them to the next minute's run.
REMINDER_BATCH = 500


def reminder_offsets() -> tuple[int, ...]:
    """The configured offsets in minutes, largest first."""
    return tuple(sorted(set(settings.REMINDER_OFFSETS_MINUTES), reverse=True))


def _window(offset: int, now: datetime) -> tuple[datetime, datetime]:
    """Starts for which the `offset` reminder is due now: its moment has come, and the next
    smaller offset's has not (that one will say it better), nor has the start."""
    smaller = [other for other in reminder_offsets() if other < offset]
    latest_start = now + timedelta(minutes=offset)
    earliest_start = now + timedelta(minutes=max(smaller)) if smaller else now
    return earliest_start, latest_start


def _moment_not_before(field: str, offset: int) -> Q:
    """The reminder's moment (start - offset) is at or after `field` (a time on the session,
    or on the booking)."""
    moment = F("session__start_time") - timedelta(minutes=offset)
    return Q(**{f"{field}__lte": moment})


def _due_booking_ids(offset: int, now: datetime) -> list[int]:
    earliest_start, latest_start = _window(offset, now)
    claimed = Reminder.objects.filter(
        booking=OuterRef("pk"), offset_minutes=offset, start_time=OuterRef("session__start_time")
    )
    return list(
        Booking.objects.filter(
            status=Booking.Status.CONFIRMED,
            session__status=Session.Status.PUBLISHED,
            session__start_time__gt=earliest_start,
            session__start_time__lte=latest_start,
        )
        .alias(confirmed_moment=Coalesce("confirmed_at", "created_at"))
        .filter(_moment_not_before("confirmed_moment", offset))
        .filter(
            Q(session__rescheduled_at__isnull=True)
            | _moment_not_before("session__rescheduled_at", offset)
        )
        .exclude(Exists(claimed))
        .order_by("session__start_time", "id")
        .values_list("id", flat=True)[:REMINDER_BATCH]
    )


def _claim(**fields) -> bool:
    """Inserts the claim row; False if another run has it (a savepoint keeps the caller's
    transaction usable). Caller holds the row lock of the booking or session."""
    try:
        with transaction.atomic():
            Reminder.objects.create(**fields)
    except IntegrityError:
        return False
    return True


def _still_due(start_time: datetime, offset: int, now: datetime, *, since: datetime) -> bool:
    earliest_start, latest_start = _window(offset, now)
    return earliest_start < start_time <= latest_start and since <= start_time - timedelta(
        minutes=offset
    )


def reminder_send_for_booking(*, booking_id: int, offset: int, now: datetime) -> bool:
    """Claims and queues one attendee reminder; False if it is not (or no longer) due or
    another run claimed it."""
    with transaction.atomic():
        try:
            booking = lock_booking(booking_id=booking_id)
        except NotFound:
            return False
        session = booking.session
        since = max(
            booking.confirmed_at or booking.created_at,
            session.rescheduled_at or booking.created_at,
        )
        if (
            booking.status != Booking.Status.CONFIRMED
            or session.status != Session.Status.PUBLISHED
            or not _still_due(session.start_time, offset, now, since=since)
        ):
            return False
        if not _claim(
            session=session, booking=booking, offset_minutes=offset, start_time=session.start_time
        ):
            return False
        notifications.notify_reminder(booking=booking, offset_minutes=offset)
    return True


def _due_creator_session_ids(offset: int, now: datetime) -> list[int]:
    claimed = Reminder.objects.filter(
        session=OuterRef("pk"),
        booking__isnull=True,
        offset_minutes=offset,
        start_time=OuterRef("start_time"),
    )
    moment = F("start_time") - timedelta(minutes=offset)
    return list(
        Session.objects.filter(
            status=Session.Status.PUBLISHED,
            start_time__gt=now,
            start_time__lte=now + timedelta(minutes=offset),
            created_at__lte=moment,
        )
        .filter(Q(rescheduled_at__isnull=True) | Q(rescheduled_at__lte=moment))
        .exclude(Exists(claimed))
        .order_by("start_time", "id")
        .values_list("id", flat=True)[:REMINDER_BATCH]
    )


def reminder_send_for_creator(*, session_id: int, offset: int, now: datetime) -> bool:
    """Claims and queues one creator's "starting soon" for a session."""
    with transaction.atomic():
        try:
            session = lock_session(session_id=session_id)
        except NotFound:
            return False
        since = session.rescheduled_at or session.created_at
        if (
            session.status != Session.Status.PUBLISHED
            or not now < session.start_time <= now + timedelta(minutes=offset)
            or since > session.start_time - timedelta(minutes=offset)
        ):
            return False
        if not _claim(
            session=session, booking=None, offset_minutes=offset, start_time=session.start_time
        ):
            return False
        # Under the session lock: no booking of it changes while we count.
        attendees = (
            session.bookings.filter(status=Booking.Status.CONFIRMED).aggregate(seats=Sum("seats"))[
                "seats"
            ]
            or 0
        )
        notifications.notify_creator_starting_soon(
            session=session, offset_minutes=offset, attendees=attendees
        )
    return True


def reminders_send_due(*, now: datetime | None = None) -> int:
    """The periodic job: every reminder due now, each claimed once. Returns how many it sent
    (claimed and queued); run concurrently, the runs together send each one once."""
    now = now or timezone.now()
    offsets = reminder_offsets()
    sent = 0
    for offset in offsets:
        for booking_id in _due_booking_ids(offset, now):
            sent += reminder_send_for_booking(booking_id=booking_id, offset=offset, now=now)
    if offsets:
        smallest = min(offsets)
        for session_id in _due_creator_session_ids(smallest, now):
            sent += reminder_send_for_creator(session_id=session_id, offset=smallest, now=now)
    if sent:
        logger.info("reminders: %s sent", sent)
    return sent
