"""A booking's own e-mails: booked, confirmed, cancelled, moved to another session, and its
session's start moved."""

from datetime import datetime

from django.conf import settings

from backend.models import Booking, Session, User
from backend.selectors.calendar import booking_sequence
from backend.services.notifications.common import (
    Step,
    _attendee_steps,
    _booking_url,
    _creator_steps,
    _display_name,
    _email,
    _ics_attachment,
    _instant,
    _queue,
    _zone_name,
)


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
