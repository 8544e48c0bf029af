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
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail

from backend.models import Booking, Session, User
from backend.services.outbox import outbox_enqueue
from backend.timezones import is_valid_timezone, zone

logger = logging.getLogger(__name__)

SITE_NAME = "Sessions Marketplace"
SEND_EMAIL_TASK = "notifications.send_email"
# About half an hour of retries (10 s doubling, capped) before a message is given up.
EMAIL_MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Email:
    kind: str
    booking_id: int
    to: str
    subject: str
    body: str


def _display_name(user: User) -> str:
    return user.get_full_name() or user.username


def _when(booking: Booking) -> str:
    session = booking.session
    start = session.start_time.strftime("%Y-%m-%d %H:%M")
    end = session.end_time.strftime("%H:%M")
    return f"{start}-{end} UTC"


def _summary(booking: Booking) -> str:
    return (
        f"Session: {booking.session.title}\n"
        f"When: {_when(booking)}\n"
        f"Seats: {booking.seats}\n"
        f"Amount: {booking.amount} {booking.currency}\n"
        f"Booking: #{booking.pk} ({booking.status}, payment {booking.payment_status})\n"
    )


def email_send(*, kind: str, booking_id: int, to: str, subject: str, body: str) -> None:
    """The task's handler: one message through EMAIL_URL. Raises on failure, to be retried."""
    try:
        send_mail(subject, body, None, [to], fail_silently=False)
    except Exception:
        # Any backend error (SMTP down, refused recipient, timeout): logged here, retried by
        # the outbox.
        logger.exception("booking email %s for booking %s to %s failed", kind, booking_id, to)
        raise


def _queue(email: Email | None, *, occasion: str = "") -> None:
    """`occasion` tells apart messages of one kind that may repeat for a booking (each move of
    its session): it becomes part of the outbox's effect key."""
    if email is None:
        return
    effect_key = f"email:{email.kind}:booking:{email.booking_id}"
    outbox_enqueue(
        task=SEND_EMAIL_TASK,
        kwargs={
            "kind": email.kind,
            "booking_id": email.booking_id,
            "to": email.to,
            "subject": email.subject,
            "body": email.body,
        },
        effect_key=f"{effect_key}:{occasion}" if occasion else effect_key,
        max_attempts=EMAIL_MAX_ATTEMPTS,
    )


def _email(kind: str, booking: Booking, recipient: User, subject: str, body: str) -> Email | None:
    if not recipient.email:
        logger.info("booking email %s for booking %s skipped: no address", kind, booking.pk)
        return None
    footer = f"\n-- \n{SITE_NAME}\n"
    return Email(
        kind=kind,
        booking_id=booking.pk,
        to=recipient.email,
        # A header cannot hold a line break (Django refuses it): titles are user input.
        subject=" ".join(f"[{SITE_NAME}] {subject}".split()),
        body=f"Hello {_display_name(recipient)},\n\n{body}\n{_summary(booking)}{footer}",
    )


def notify_booking_created(*, booking: Booking) -> None:
    session = booking.session
    if booking.status == Booking.Status.CONFIRMED:
        user_body = "Your booking is confirmed. See you there!"
        subject = f"Booking confirmed: {session.title}"
    else:
        # Not always BOOKING_HOLD_MINUTES from now: a re-booking keeps a cancelled hold's end.
        held_until = (
            booking.hold_expires_at.strftime("%Y-%m-%d %H:%M UTC")
            if booking.hold_expires_at
            else f"{settings.BOOKING_HOLD_MINUTES} minutes"
        )
        user_body = (
            f"Your seats are held until {held_until}. Complete the payment to confirm "
            "the booking; unpaid holds expire."
        )
        subject = f"Booking received: {session.title}"
    _queue(_email("booked", booking, booking.user, subject, user_body))
    _queue(
        _email(
            "creator_new_booking",
            booking,
            session.creator,
            f"New booking: {session.title}",
            f"{_display_name(booking.user)} booked {booking.seats} seat(s)."
            + ("" if booking.status == Booking.Status.CONFIRMED else " Awaiting payment."),
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
            )
        )


def _instant(value: datetime, timezone_name: str) -> str:
    """`2027-10-25 16:30 UTC (18:30 Europe/Berlin)`: UTC as elsewhere, plus the session's zone."""
    utc = value.astimezone(zone("UTC")).strftime("%Y-%m-%d %H:%M UTC")
    if timezone_name == "UTC" or not is_valid_timezone(timezone_name):
        return utc
    local = value.astimezone(zone(timezone_name)).strftime("%Y-%m-%d %H:%M")
    return f"{utc} ({local} {timezone_name})"


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
    moved = (
        f"The session's host moved this session from "
        f"{_instant(previous_start_time, session.timezone)} to "
        f"{_instant(session.start_time, session.timezone)}. Your booking stays as it "
        "is, for the new time."
    )
    for booking in bookings:
        booking.session = session
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
    """Tells the booking's user and the creator that the booking moved to another session.

    Call it inside the transaction that moved it (`booking.session` is the new one, saved).
    """
    session = booking.session
    moved = (
        f'Booking #{booking.pk} moved from "{previous_session.title}" at '
        f"{_instant(previous_session.start_time, previous_session.timezone)} to "
        f'"{session.title}" at {_instant(session.start_time, session.timezone)}. '
        "Seats and payment stay as they were."
    )
    # One message per move: each move of the booking is a new change number.
    occasion = f"{booking.schedule_changes}-{previous_session.pk}-{session.pk}"
    _queue(
        _email("booking_rescheduled", booking, booking.user, f"New date: {session.title}", moved),
        occasion=occasion,
    )
    _queue(
        _email(
            "creator_booking_rescheduled",
            booking,
            session.creator,
            f"Booking moved: {session.title}",
            f"{_display_name(booking.user)}'s booking ({booking.seats} seat(s)): {moved}",
        ),
        occasion=occasion,
    )
