"""What every notification e-mail shares: the recipient's zone and wall clock, the layout
(plain text and HTML from one context), the next steps, the .ics attachment, and the outbox
row that a task (`notifications.send_email`) turns into the message after the commit."""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from backend import booking_rules
from backend.models import Booking, Session, User
from backend.selectors.calendar import booking_calendar
from backend.services.outbox import outbox_enqueue
from backend.timezones import DEFAULT_TIMEZONE, is_valid_timezone, zone

# The package's name, as before it was split: logging configuration and tests select on it.
logger = logging.getLogger("backend.services.notifications")

SITE_NAME = "Sessions Marketplace"
SEND_EMAIL_TASK = "notifications.send_email"
# About half an hour of retries (10 s doubling, capped) before a message is given up.
EMAIL_MAX_ATTEMPTS = 10
ICS_MIMETYPE = "text/calendar; charset=utf-8; method=PUBLISH"


@dataclass(frozen=True)
class Step:
    """One thing the recipient can do next: a sentence and, if any, its link."""

    text: str
    url: str = ""


@dataclass(frozen=True)
class Email:
    kind: str
    booking_id: int
    to: str
    subject: str
    body: str
    html: str = ""
    # [{"filename", "content", "mimetype"}]: JSON, as outbox kwargs must be.
    attachments: list[dict[str, str]] = field(default_factory=list)


def _display_name(user: User) -> str:
    return user.get_full_name() or user.username


def _zone_name(user: User) -> str:
    name = user.timezone
    return name if is_valid_timezone(name) else DEFAULT_TIMEZONE


def local_time(value: datetime, timezone_name: str) -> datetime:
    return value.astimezone(zone(timezone_name))


def format_when(session: Session, timezone_name: str) -> str:
    """`Monday 30 March 2026, 09:00-10:00 CEST (Europe/Paris)`: the recipient's wall clock,
    the abbreviation in force that day (DST-aware) and the zone's IANA name."""
    # In UTC first: arithmetic on a datetime in a zone is wall-clock arithmetic (wrong across a
    # DST change); a session read from the database is in UTC already, one built in memory
    # may not be.
    start_utc = session.start_time.astimezone(UTC)
    start = local_time(start_utc, timezone_name)
    end = local_time(start_utc + timedelta(minutes=session.duration_minutes), timezone_name)
    end_text = (
        end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%a %d %b %H:%M")
    )
    abbreviation = start.strftime("%Z")
    named = "" if abbreviation == timezone_name else f" ({timezone_name})"
    return f"{start:%A} {start.day} {start:%B %Y}, {start:%H:%M}-{end_text} {abbreviation}{named}"


def _format_instant(value: datetime, timezone_name: str) -> str:
    local = local_time(value, timezone_name)
    abbreviation = local.strftime("%Z")
    named = "" if abbreviation == timezone_name else f" ({timezone_name})"
    return f"{local:%A} {local.day} {local:%B %Y}, {local:%H:%M} {abbreviation}{named}"


def _booking_url(booking: Booking) -> str:
    return f"{settings.FRONTEND_URL}/bookings/{booking.pk}"


def _session_url(session: Session) -> str:
    return f"{settings.FRONTEND_URL}/sessions/{session.pk}"


def calendar_feed_link(user: User) -> str:
    return f"{settings.SITE_URL}/api/calendar/{user.calendar_token}.ics"


def _details(booking: Booking, timezone_name: str) -> list[tuple[str, str]]:
    session = booking.session
    rows = [("Session", session.title), ("When", format_when(session, timezone_name))]
    if session.location.strip():
        rows.append(("Where", session.location.strip()))
    elif session.is_online:
        rows.append(("Where", "Online"))
    rows += [
        ("Seats", str(booking.seats)),
        ("Amount", f"{booking.amount} {booking.currency}"),
        ("Booking", f"#{booking.pk} ({booking.status}, payment {booking.payment_status})"),
    ]
    return rows


def _cancel_step(booking: Booking, timezone_name: str) -> Step:
    """What cancelling costs, stated in the recipient's zone (the rule of booking_cancel)."""
    session = booking.session
    if booking.payment_status == Booking.PaymentStatus.PAID:
        deadline = _format_instant(
            session.start_time.astimezone(UTC) - booking_rules.cancellation_window(), timezone_name
        )
        text = f"Can't make it? Cancel for a full refund until {deadline}:"
    else:
        text = "Can't make it? Cancel before the start so someone else can have your seat:"
    return Step(text, _booking_url(booking))


def _attendee_steps(booking: Booking, timezone_name: str, *, attached: bool) -> list[Step]:
    session = booking.session
    steps: list[Step] = []
    if booking.status == Booking.Status.CONFIRMED and session.is_online and session.meeting_url:
        steps.append(Step("Join online at the start time:", session.meeting_url))
    if attached:
        steps.append(Step("Add it to your calendar: open the attached .ics file."))
    steps.append(
        Step(
            "Or subscribe to your calendar feed (it follows every change):",
            calendar_feed_link(booking.user),
        )
    )
    steps.append(_cancel_step(booking, timezone_name))
    return steps


def _ics_attachment(booking: Booking) -> dict[str, str]:
    return {
        "filename": f"booking-{booking.pk}.ics",
        "content": booking_calendar(booking=booking).decode(),
        "mimetype": ICS_MIMETYPE,
    }


def email_send(
    *,
    kind: str,
    booking_id: int,
    to: str,
    subject: str,
    body: str,
    html: str = "",
    attachments: list[dict[str, str]] | None = None,
) -> None:
    """The task's handler: one message through EMAIL_URL. Raises on failure, to be retried."""
    message = EmailMultiAlternatives(subject, body, None, [to])
    if html:
        message.attach_alternative(html, "text/html")
    for attachment in attachments or []:
        message.attach(attachment["filename"], attachment["content"], attachment["mimetype"])
    try:
        message.send(fail_silently=False)
    except Exception:
        # Any backend error (SMTP down, refused recipient, timeout): logged here, retried by
        # the outbox.
        logger.exception("booking email %s for booking %s to %s failed", kind, booking_id, to)
        raise


def _queue(email: Email | None, *, occasion: str = "") -> None:
    """`occasion` tells apart messages of one kind that may repeat for a booking (each move of
    its session, each reminder): it becomes part of the outbox's effect key."""
    if email is None:
        return
    effect_key = f"email:{email.kind}:booking:{email.booking_id}"
    kwargs: dict[str, Any] = {
        "kind": email.kind,
        "booking_id": email.booking_id,
        "to": email.to,
        "subject": email.subject,
        "body": email.body,
        "html": email.html,
    }
    if email.attachments:
        kwargs["attachments"] = email.attachments
    outbox_enqueue(
        task=SEND_EMAIL_TASK,
        kwargs=kwargs,
        effect_key=f"{effect_key}:{occasion}" if occasion else effect_key,
        max_attempts=EMAIL_MAX_ATTEMPTS,
    )


def _email(
    kind: str,
    booking: Booking,
    recipient: User,
    subject: str,
    body: str,
    *,
    details: bool = True,
    steps: list[Step] | None = None,
    attachments: list[dict[str, str]] | None = None,
) -> Email | None:
    """Renders one message (plain text and HTML from the same context, one base layout),
    every time in the recipient's zone."""
    if not recipient.email:
        logger.info("booking email %s for booking %s skipped: no address", kind, booking.pk)
        return None
    timezone_name = _zone_name(recipient)
    # A header cannot hold a line break (Django refuses it): titles are user input.
    subject_line = " ".join(f"[{SITE_NAME}] {subject}".split())
    context = {
        "site_name": SITE_NAME,
        "subject": subject_line,
        "recipient_timezone": timezone_name,
        "greeting": f"Hello {_display_name(recipient)},",
        "paragraphs": [paragraph for paragraph in body.split("\n\n") if paragraph],
        "details": _details(booking, timezone_name) if details else [],
        "next_steps": steps or [],
    }
    text = render_to_string("emails/message.txt", context)
    return Email(
        kind=kind,
        booking_id=booking.pk,
        to=recipient.email,
        subject=subject_line,
        body=re.sub(r"\n{3,}", "\n\n", text).strip() + "\n",
        html=render_to_string("emails/message.html", context),
        attachments=attachments or [],
    )


def _creator_steps(session: Session) -> list[Step]:
    return [Step("See who is coming:", _session_url(session))]


def _instant(value: datetime, timezone_name: str, session_timezone: str) -> str:
    """`2027-10-25 16:30 UTC (2027-10-25 18:30 Europe/Berlin)`: the recipient's zone, plus the
    session's own when it is another one."""
    primary_zone = timezone_name if is_valid_timezone(timezone_name) else DEFAULT_TIMEZONE
    primary = local_time(value, primary_zone)
    text = f"{primary:%Y-%m-%d %H:%M} {primary:%Z}"
    if primary_zone != DEFAULT_TIMEZONE and primary.strftime("%Z") != primary_zone:
        text += f" {primary_zone}"
    if session_timezone == primary_zone or not is_valid_timezone(session_timezone):
        return text
    local = local_time(value, session_timezone)
    return f"{text} ({local:%Y-%m-%d %H:%M} {session_timezone})"
