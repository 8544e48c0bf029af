"""Booking emails, sent by a task (`notifications.send_email`) after the booking commits.

Each `notify_*` function is called inside the service's transaction. It renders the message at
once (the booking and its session are loaded and locked there) and writes it to the outbox in
that transaction (backend/services/outbox.py), so nobody is told about a booking that was
rolled back, and a mail server that is down or slow never slows, breaks or undoes a booking:
the worker sends it, retrying with backoff while the server fails. One e-mail per booking and
kind (the outbox's unique effect key `email:<kind>:booking:<id>`).

Who hears what:
- the user: booked (free sessions are confirmed at once, paid ones wait for payment),
  confirmed (by the creator, or by the payment service after a payment), cancelled;
- the creator: a new booking, a cancellation by the user (a creator who cancels is not
  told about their own action);
- every attendee with an active booking: the creator moved the session's start time.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from backend import booking_rules
from backend.models import Booking, Session, User
from backend.selectors.calendar import booking_calendar, booking_sequence
from backend.services.outbox import outbox_enqueue
from backend.timezones import DEFAULT_TIMEZONE, is_valid_timezone, zone

logger = logging.getLogger(__name__)

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


def notify_booking_created(*, booking: Booking) -> None:
    session = booking.session
    user = booking.user
    timezone_name = _zone_name(user)
    if booking.status == Booking.Status.CONFIRMED:
        _queue(
            _email(
                "booked",
                booking,
                user,
                f"Booking confirmed: {session.title}",
                "Your booking is confirmed. See you there!",
                steps=_attendee_steps(booking, timezone_name, attached=True),
                attachments=[_ics_attachment(booking)],
            )
        )
    else:
        # Not always BOOKING_HOLD_MINUTES from now: a re-booking keeps a cancelled hold's end.
        held_until = (
            _instant(booking.hold_expires_at, timezone_name, session.timezone)
            if booking.hold_expires_at
            else f"{settings.BOOKING_HOLD_MINUTES} minutes"
        )
        _queue(
            _email(
                "booked",
                booking,
                user,
                f"Booking received: {session.title}",
                f"Your seats are held until {held_until}. Complete the payment to confirm "
                "the booking; unpaid holds expire.",
                steps=[Step("Complete the payment:", _booking_url(booking))],
            )
        )
    _queue(
        _email(
            "creator_new_booking",
            booking,
            session.creator,
            f"New booking: {session.title}",
            f"{_display_name(user)} booked {booking.seats} seat(s)."
            + ("" if booking.status == Booking.Status.CONFIRMED else " Awaiting payment."),
            steps=_creator_steps(session),
        )
    )


def notify_booking_confirmed(*, booking: Booking) -> None:
    """Also for the payment service, once a payment has confirmed a booking."""
    _queue(
        _email(
            "confirmed",
            booking,
            booking.user,
            f"Booking confirmed: {booking.session.title}",
            "Your booking is confirmed. See you there!",
            steps=_attendee_steps(booking, _zone_name(booking.user), attached=True),
            attachments=[_ics_attachment(booking)],
        )
    )


def notify_booking_cancelled(*, booking: Booking, by_creator: bool) -> None:
    session = booking.session
    who = "The session's host" if by_creator else "You"
    refund = (
        " Your payment is being refunded."
        if booking.payment_status in (Booking.PaymentStatus.PAID, Booking.PaymentStatus.REFUNDED)
        else ""
    )
    _queue(
        _email(
            "cancelled",
            booking,
            booking.user,
            f"Booking cancelled: {session.title}",
            f"{who} cancelled this booking.{refund}",
            steps=[
                Step("Remove it from your calendar: open the attached .ics file."),
                Step("Find another session:", f"{settings.FRONTEND_URL}/sessions"),
            ],
            # The same UID with STATUS:CANCELLED: calendar apps strike the event out.
            attachments=[_ics_attachment(booking)],
        )
    )
    if not by_creator:
        _queue(
            _email(
                "creator_cancellation",
                booking,
                session.creator,
                f"Booking cancelled: {session.title}",
                f"{_display_name(booking.user)} cancelled {booking.seats} seat(s).",
                steps=_creator_steps(session),
            )
        )


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


def notify_session_rescheduled(*, session: Session, previous_start_time: datetime) -> None:
    """Tells each attendee with an active (pending or confirmed) booking that the start moved.

    Call it inside the transaction that moved `session.start_time` (saved already).
    """
    if session.start_time == previous_start_time:
        return
    bookings = (
        session.bookings.filter(status__in=Booking.ACTIVE_STATUSES)
        .select_related("user")
        .order_by("id")
    )
    for booking in bookings:
        booking.session = session
        timezone_name = _zone_name(booking.user)
        moved = (
            f"The session's host moved this session from "
            f"{_instant(previous_start_time, timezone_name, session.timezone)} to "
            f"{_instant(session.start_time, timezone_name, session.timezone)}. Your booking "
            "stays as it is, for the new time."
        )
        confirmed = booking.status == Booking.Status.CONFIRMED
        refund = (
            " If the new time does not suit you, you can cancel for a full refund until the "
            "session starts."
            if booking.payment_status == Booking.PaymentStatus.PAID
            else ""
        )
        _queue(
            _email(
                "session_rescheduled",
                booking,
                booking.user,
                f"New time: {session.title}",
                moved + refund,
                steps=_attendee_steps(booking, timezone_name, attached=confirmed),
                # The updated event (same UID, higher SEQUENCE) replaces the imported one.
                attachments=[_ics_attachment(booking)] if confirmed else None,
            ),
            # One message per move: moved again later, the booking gets another.
            occasion=f"{int(previous_start_time.timestamp())}-{int(session.start_time.timestamp())}",
        )


def notify_dispute(*, booking: Booking, dispute_id: str, opened: bool, outcome: str = "") -> None:
    """A chargeback opened or closed: the session's creator (their payout is held or taken
    back) and every staff member with an address (they answer it in Stripe) are told, once
    each per booking and event."""
    if opened:
        kind = "dispute_opened"
        subject = f"Payment disputed: {booking.session.title}"
        body = (
            f"The attendee's bank disputed the payment of this booking (Stripe dispute "
            f"{dispute_id}). Its payout is held until the dispute is closed."
        )
    else:
        kind = "dispute_closed"
        won = outcome == "dispute_won"
        subject = f"Dispute {'won' if won else 'lost'}: {booking.session.title}"
        body = (
            f"The dispute {dispute_id} was closed in the platform's favour: the payout goes ahead."
            if won
            else f"The dispute {dispute_id} was lost: the money went back to the cardholder, "
            "and a payout already made is reversed."
        )
    staff = User.objects.filter(is_staff=True, is_active=True).exclude(email="").order_by("pk")
    recipients = [booking.session.creator, *staff]
    seen: set[int] = set()
    for recipient in recipients:
        if recipient.pk in seen:
            continue
        seen.add(recipient.pk)
        _queue(_email(kind, booking, recipient, subject, body), occasion=f"user:{recipient.pk}")


def notify_booking_rescheduled(*, booking: Booking, previous_session: Session) -> None:
    """Tells the booking's user and the creator that the booking moved to another session,
    each in their own time zone; the user gets the updated calendar event.

    Call it inside the transaction that moved it (`booking.session` is the new one, saved).
    """
    session = booking.session

    def moved(recipient: User) -> str:
        timezone_name = _zone_name(recipient)
        return (
            f'Booking #{booking.pk} moved from "{previous_session.title}" at '
            f"{_instant(previous_session.start_time, timezone_name, previous_session.timezone)}"
            f' to "{session.title}" at '
            f"{_instant(session.start_time, timezone_name, session.timezone)}. "
            "Seats and payment stay as they were."
        )

    # One message per move: each move of the booking is a new change number.
    occasion = f"{booking_sequence(booking)}-{previous_session.pk}-{session.pk}"
    confirmed = booking.status == Booking.Status.CONFIRMED
    _queue(
        _email(
            "booking_rescheduled",
            booking,
            booking.user,
            f"New date: {session.title}",
            moved(booking.user),
            steps=_attendee_steps(booking, _zone_name(booking.user), attached=confirmed),
            attachments=[_ics_attachment(booking)] if confirmed else None,
        ),
        occasion=occasion,
    )
    _queue(
        _email(
            "creator_booking_rescheduled",
            booking,
            session.creator,
            f"Booking moved: {session.title}",
            f"{_display_name(booking.user)}'s booking ({booking.seats} seat(s)): "
            + moved(session.creator),
        ),
        occasion=occasion,
    )


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


# --- sessions that run only if enough people book (services/minimum.py) ----------------------


def _decision_text(session: Session, timezone_name: str) -> str:
    decision_at = session.decision_at or session.start_time
    return _instant(decision_at, timezone_name, session.timezone)


def notify_card_saved(*, booking: Booking) -> None:
    """The card is saved; nothing is charged unless the session reaches its minimum."""
    session = booking.session
    timezone_name = _zone_name(booking.user)
    _queue(
        _email(
            "card_saved",
            booking,
            booking.user,
            f"Seat held: {session.title}",
            f"Your seat is held and your card is saved, not charged. {session.title} runs if "
            f"{session.min_attendees} seat(s) are booked by "
            f"{_decision_text(session, timezone_name)}: then your card is charged and the "
            "booking confirmed. If not, the session is called off and you pay nothing.",
            steps=[Step("See your booking:", _booking_url(booking))],
        )
    )


def notify_pay_on_session(*, booking: Booking, needs_authentication: bool) -> None:
    """The off-session charge at the decision did not go through: pay within the hold."""
    session = booking.session
    timezone_name = _zone_name(booking.user)
    held_until = _instant(
        booking.hold_expires_at or timezone.now(), timezone_name, session.timezone
    )
    why = (
        "your bank wants you to confirm the payment"
        if needs_authentication
        else "your card was declined"
    )
    _queue(
        _email(
            "pay_on_session",
            booking,
            booking.user,
            f"Action needed: pay for {session.title}",
            f"{session.title} is going ahead, but {why}. Your seat is held until {held_until}; "
            "pay by then to keep it, otherwise it is released.",
            steps=[Step("Pay now:", _booking_url(booking))],
        )
    )


def notify_called_off(*, booking: Booking) -> None:
    """The attendee's e-mail when the minimum was not reached: cancelled, nothing charged."""
    session = booking.session
    _queue(
        _email(
            "called_off",
            booking,
            booking.user,
            f"Called off: {session.title}",
            f"Not enough people booked {session.title}, so it has been called off. Your "
            "booking is cancelled and nothing was charged; your saved card has been released.",
            steps=[
                Step("Remove it from your calendar: open the attached .ics file."),
                Step("Find another session:", f"{settings.FRONTEND_URL}/sessions"),
            ],
            attachments=[_ics_attachment(booking)],
        )
    )


def notify_creator_decision(
    *, session: Session, runs: bool, committed: int, bookings: int, charging: int
) -> None:
    """The creator hears the decision either way, with the numbers (once per session)."""
    creator = session.creator
    if not creator.email:
        return
    timezone_name = _zone_name(creator)
    title = f"Going ahead: {session.title}" if runs else f"Called off: {session.title}"
    subject_line = " ".join(f"[{SITE_NAME}] {title}".split())
    if runs:
        text_body = (
            f"{committed} of the minimum {session.min_attendees} seat(s) were committed, so "
            f"{session.title} goes ahead. {charging} saved card(s) are being charged now."
        )
    else:
        text_body = (
            f"Only {committed} of the minimum {session.min_attendees} seat(s) were committed, so "
            f"{session.title} has been called off. {bookings} booking(s) were cancelled and "
            "nobody was charged."
        )
    context = {
        "site_name": SITE_NAME,
        "subject": subject_line,
        "recipient_timezone": timezone_name,
        "greeting": f"Hello {_display_name(creator)},",
        "paragraphs": [text_body],
        "details": [
            ("Session", session.title),
            ("When", format_when(session, timezone_name)),
            ("Committed seats", str(committed)),
            ("Minimum", str(session.min_attendees)),
            ("Capacity", str(session.capacity)),
        ],
        "next_steps": [Step("See your session:", _session_url(session))],
    }
    text = render_to_string("emails/message.txt", context)
    outbox_enqueue(
        task=SEND_EMAIL_TASK,
        kwargs={
            "kind": "minimum_decision",
            "booking_id": session.pk,
            "to": creator.email,
            "subject": subject_line,
            "body": re.sub(r"\n{3,}", "\n\n", text).strip() + "\n",
            "html": render_to_string("emails/message.html", context),
        },
        effect_key=f"email:minimum_decision:session:{session.pk}",
        max_attempts=EMAIL_MAX_ATTEMPTS,
    )
