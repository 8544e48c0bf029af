"""Sessions that run only if enough people book (backend/services/minimum.py): the card saved,
the charge that needs the attendee, called off, and the creator's decision e-mail."""

import re

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from backend.models import Booking, Session
from backend.services.notifications.common import (
    EMAIL_MAX_ATTEMPTS,
    SEND_EMAIL_TASK,
    SITE_NAME,
    Step,
    _booking_url,
    _display_name,
    _email,
    _ics_attachment,
    _instant,
    _queue,
    _session_url,
    _zone_name,
    format_when,
)
from backend.services.outbox import outbox_enqueue


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
