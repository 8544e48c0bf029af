"""Moving a confirmed booking to another session of the same creator (CONTRACT.md,
"Cancellation policy, partial refunds, reschedule").

The booking keeps its id, seats, amount and payment; only its session changes. Both sessions'
seats change, so both rows are locked, in id order (locking.lock_sessions), before the booking:
the same order every other writer uses, so two reschedules in opposite directions, or a
reschedule racing bookings of either session, cannot deadlock or oversell.
"""

from django.db.models import Q
from django.utils import timezone

from backend import booking_rules
from backend.exceptions import BookingError, NotFound
from backend.models import Booking, Session, User
from backend.services import notifications, waitlist, webhooks
from backend.services.booking_changes import (
    Role,
    booking_for_update,
    booking_transition,
    bookings_expire_stale,
    commit_then_raise,
)
from backend.services.locking import lock_sessions

Status = Booking.Status


def booking_reschedule(*, booking_id: int, actor: User, session_id: int) -> Booking:
    """Moves the booking to session `session_id`, by its user or the session's creator.

    Its user may do it while a cancellation would refund it in full (so moving is never a way
    around the refund policy); the creator at any time. The target must be published, not
    started, of the same creator, cost what the booking cost (price x seats, same currency)
    and have the seats; the user must not hold another booking there. 409 otherwise, and
    nothing changes.
    """
    visible = (
        Booking.objects.filter(Q(user=actor) | Q(session__creator=actor), pk=booking_id)
        .values_list("session_id", flat=True)
        .first()
    )
    if visible is None:
        raise NotFound("Booking not found.")
    with commit_then_raise():
        sessions = lock_sessions(session_ids=[visible, session_id])
        booking, role = booking_for_update(
            actor=actor, booking_id=booking_id, allowed={Role.OWNER, Role.CREATOR}
        )
        if booking.session_id != visible:
            # Moved by someone else between the read and the locks: the lock we hold is not
            # its session's. Nothing changed here; the client may ask again.
            raise BookingError(
                "This booking changed meanwhile; please try again.", code="booking_conflict"
            )
        target = sessions[session_id]
        if target.status == Session.Status.DRAFT and target.creator_id != actor.pk:
            raise NotFound("Session not found.")  # others' drafts do not exist for them
        # Holds that ran out take no seats and no longer count as the user's booking there.
        bookings_expire_stale(session_id=target.pk)
        _check_move(booking=booking, target=target, role=role)
        previous_session = booking.session
        booking_transition(
            booking,
            actor=actor,
            reason=f"rescheduled_by_{role.value}_from_session_{previous_session.pk}",
            session=target,
            # The calendar SEQUENCE (session's changes + this) must grow by one across the move.
            schedule_changes=previous_session.schedule_sequence
            + booking.schedule_changes
            + 1
            - target.schedule_sequence,
            # Moved by the creator, the user did not choose the new date: as when the creator
            # moves a session, their cancellation refunds in full. Their own choice does not.
            session_moved_at=booking.session_moved_at if role == Role.OWNER else timezone.now(),
        )
        notifications.notify_booking_rescheduled(booking=booking, previous_session=previous_session)
        webhooks.emit_booking_rescheduled(booking, previous_session=previous_session)
        # The seats it left are free: the people waiting for the old session get them first.
        waitlist.waitlist_seats_freed(session=previous_session)
    return booking


def _check_move(*, booking: Booking, target: Session, role: Role) -> None:
    """Every reason the move is refused. Caller holds both session locks and the booking."""
    if booking.status != Status.CONFIRMED:
        raise BookingError(
            f"Only confirmed bookings can be moved; this one is {booking.status}.",
            code="not_reschedulable",
        )
    if target.pk == booking.session_id:
        raise BookingError("The booking is already for this session.", code="same_session")
    if target.creator_id != booking.session.creator_id:
        raise BookingError(
            "A booking can only move to another session of the same creator.",
            code="other_creator",
        )
    if target.status != Session.Status.PUBLISHED:
        raise BookingError("That session is not open for booking.", code="not_bookable")
    if target.start_time <= timezone.now():
        raise BookingError("That session has already started.", code="session_started")
    cost = booking_rules.booking_amount(unit_price=target.price, seats=booking.seats)
    if cost != booking.amount or target.currency.upper() != booking.currency.upper():
        raise BookingError(
            f"That session costs {cost} {target.currency.upper()} for {booking.seats} seat(s); "
            f"this booking cost {booking.amount} {booking.currency}. Cancel and book instead.",
            code="price_mismatch",
        )
    if role == Role.OWNER:
        quote = booking_rules.cancel_quote(booking=booking, by_owner=True)
        paid = booking.payment_status == Booking.PaymentStatus.PAID
        if not quote.allowed or (paid and quote.refund_percent < 100):
            raise BookingError(
                "You can move this booking only while cancelling it would refund it in full.",
                code="reschedule_window",
            )
    if target.bookings.filter(user_id=booking.user_id, status__in=Booking.ACTIVE_STATUSES).exists():
        raise BookingError(
            "The attendee already has a booking for that session.", code="already_booked"
        )
    booking_rules.check_seats_available(session=target, seats=booking.seats)
