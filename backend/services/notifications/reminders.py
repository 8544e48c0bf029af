"""Reminders before a session starts (claimed by backend/services/reminders.py): the
attendee's, and the creator's "starting soon"."""

import re

from django.template.loader import render_to_string

from backend.models import Booking, Session
from backend.services.notifications.common import (
    EMAIL_MAX_ATTEMPTS,
    SEND_EMAIL_TASK,
    SITE_NAME,
    Step,
    _attendee_steps,
    _display_name,
    _email,
    _format_instant,
    _queue,
    _session_url,
    _zone_name,
    format_when,
    logger,
)
from backend.services.outbox import outbox_enqueue


def _offset_text(offset_minutes: int) -> str:
    if offset_minutes % 1440 == 0:
        days = offset_minutes // 1440
        return "tomorrow" if days == 1 else f"in {days} days"
    if offset_minutes % 60 == 0:
        hours = offset_minutes // 60
        return "in 1 hour" if hours == 1 else f"in {hours} hours"
    return f"in {offset_minutes} minutes"


def notify_reminder(*, booking: Booking, offset_minutes: int) -> None:
    """The attendee's reminder `offset_minutes` before the start (reminders.py claims it)."""
    session = booking.session
    timezone_name = _zone_name(booking.user)
    start = _format_instant(session.start_time, timezone_name)
    _queue(
        _email(
            "reminder",
            booking,
            booking.user,
            f"Reminder: {session.title} starts {_offset_text(offset_minutes)}",
            f"A reminder: your session starts {_offset_text(offset_minutes)}, on {start}.",
            steps=_attendee_steps(booking, timezone_name, attached=False),
        ),
        occasion=f"{offset_minutes}:{int(session.start_time.timestamp())}",
    )


def notify_creator_starting_soon(*, session: Session, offset_minutes: int, attendees: int) -> None:
    """The creator's "starting soon", once per session and start (reminders.py claims it).

    Keyed on the session: an outbox effect key of its own (`email:starting_soon:session:<id>`).
    """
    creator = session.creator
    if not creator.email:
        logger.info("starting soon for session %s skipped: no address", session.pk)
        return
    timezone_name = _zone_name(creator)
    subject_line = " ".join(
        f"[{SITE_NAME}] Starting {_offset_text(offset_minutes)}: {session.title}".split()
    )
    seats = "1 attendee" if attendees == 1 else f"{attendees} attendees"
    steps = [Step("See who is coming:", _session_url(session))]
    if session.is_online and session.meeting_url:
        steps.insert(0, Step("Open the meeting a few minutes early:", session.meeting_url))
    context = {
        "site_name": SITE_NAME,
        "subject": subject_line,
        "recipient_timezone": timezone_name,
        "greeting": f"Hello {_display_name(creator)},",
        "paragraphs": [
            f"Your session starts {_offset_text(offset_minutes)}, on "
            f"{_format_instant(session.start_time, timezone_name)}, with {seats} confirmed."
        ],
        "details": [
            ("Session", session.title),
            ("When", format_when(session, timezone_name)),
            ("Attendees", str(attendees)),
            ("Capacity", str(session.capacity)),
        ],
        "next_steps": steps,
    }
    text = render_to_string("emails/message.txt", context)
    outbox_enqueue(
        task=SEND_EMAIL_TASK,
        kwargs={
            "kind": "starting_soon",
            # No booking: the session's id stands in, for the logs.
            "booking_id": session.pk,
            "to": creator.email,
            "subject": subject_line,
            "body": re.sub(r"\n{3,}", "\n\n", text).strip() + "\n",
            "html": render_to_string("emails/message.html", context),
        },
        effect_key=(
            f"email:starting_soon:session:{session.pk}:{int(session.start_time.timestamp())}"
        ),
        max_attempts=EMAIL_MAX_ATTEMPTS,
    )
