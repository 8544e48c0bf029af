"""Booking writes: create, update, confirm, cancel, refund.

The capacity rule (CONTRACT.md, "Booking rules") holds under concurrency because every write
that changes the seats taken of a session first locks that session's row, and every write to
one booking locks the session and then the booking (backend/services/locking.py). The rules
themselves (seats, holds, transition tables) are in backend/booking_rules.py; every change is
made and recorded by `booking_transition` (backend/services/booking_changes.py).

A pending booking past its hold stops taking seats at once (`seat_holding_q`); the row itself is
marked `expired` by the periodic expiry, or by the next write that touches it or its session.
"""

from collections.abc import Collection
from datetime import datetime
from typing import NoReturn

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from backend import booking_rules
from backend.booking_rules import MAX_SEATS_PER_BOOKING
from backend.exceptions import BookingError, NotFound
from backend.models import Booking, Payment, Session, User
from backend.services import booking_changes, notifications, refunds, waitlist
from backend.services.booking_changes import (
    Role,
    booking_transition,
    bookings_expire_stale,
    commit_then_raise,
    raise_after_commit,
)
from backend.services.locking import lock_session, lock_user

__all__ = [
    "MAX_SEATS_PER_BOOKING",
    "booking_cancel",
    "booking_confirm",
    "booking_create",
    "booking_refund",
    "booking_update",
]

ONE_ACTIVE_CONSTRAINT = "booking_one_active_per_user_session"


def booking_for_update(
    *,
    actor: User,
    booking_id: int,
    allowed: Collection[Role],
    as_staff: bool = False,
    expire_stale: bool = True,
) -> tuple[Booking, Role]:
    """The access helper every workflow here starts with (booking_changes.booking_for_update).

    A hold it finds run out has freed seats: the waitlist gets them in that same transaction,
    before the 409 `expired`.
    """
    return booking_changes.booking_for_update(
        actor=actor,
        booking_id=booking_id,
        allowed=allowed,
        as_staff=as_staff,
        expire_stale=expire_stale,
        on_hold_expired=waitlist.waitlist_booking_ended,
    )


Status = Booking.Status
PaymentStatus = Booking.PaymentStatus


def _is_one_active_violation(error: IntegrityError) -> bool:
    # PostgreSQL names the constraint; SQLite only names the columns of the unique index.
    diag = getattr(error.__cause__, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name == ONE_ACTIVE_CONSTRAINT
    message = str(error)
    return ONE_ACTIVE_CONSTRAINT in message or "UNIQUE constraint failed: bookings." in message


def booking_create(*, user: User, session_id: int, seats: int = 1, notes: str = "") -> Booking:
    booking_rules.validate_seats(seats)
    # Not a plain atomic: waitlist offers made on the way stand even when this booking is
    # refused (the seats they took are why it is refused).
    with commit_then_raise():
        booking = _booking_create_locked(user=user, session_id=session_id, seats=seats, notes=notes)
    return booking


def _booking_create_locked(*, user: User, session_id: int, seats: int, notes: str) -> Booking:
    # The user's row first (the order of backend/services/locking.py): two bookings of one user
    # on two sessions cannot both pass the MAX_UNPAID_BOOKINGS count.
    lock_user(user_id=user.pk)
    # The lock serialises every booking of this session: counting and inserting cannot race.
    session = lock_session(session_id=session_id)
    now = timezone.now()
    if session.status != Session.Status.PUBLISHED:
        # Drafts are invisible to others; a cancelled session cannot be booked.
        if session.status == Session.Status.DRAFT and session.creator_id != user.pk:
            raise NotFound("Session not found.")
        raise BookingError("This session is not open for booking.", code="not_bookable")
    if session.start_time <= now:
        raise BookingError("This session has already started.", code="session_started")
    if session.creator_id == user.pk:
        raise BookingError("You cannot book your own session.", code="own_session")

    # Holds that ran out take no seats; marking them expired also frees this user's own one
    # for the one-active-booking rule. Cheap: the session is locked and such rows are few.
    bookings_expire_stale(session_id=session.pk, now=now)
    if session.bookings.filter(user=user, status__in=Booking.ACTIVE_STATUSES).exists():
        raise BookingError("You already have a booking for this session.", code="already_booked")
    is_free = session.is_free
    # Before a minimum's decision nothing is charged and nothing confirmed: the booking holds
    # its seat until the decision (a paid one once its card is saved, scheduled_payments.py).
    waits = booking_rules.decides_later(session, now)
    if not is_free:
        _check_hold_limit(user=user, now=now)
    # Seats freed without anyone waiting being told (a hold that just ran out) go to the people
    # on the waitlist first, not to whoever books next.
    offers = waitlist.waitlist_seats_freed(session=session, exclude_user_id=user.pk)
    try:
        booking_rules.check_seats_available(session=session, seats=seats)
    except BookingError as refusal:
        if offers:
            raise_after_commit(refusal)
        raise
    booking = Booking(
        session=session,
        user=user,
        seats=seats,
        notes=notes,
        amount=booking_rules.booking_amount(unit_price=session.price, seats=seats),
        currency=session.currency.upper(),
        status=Status.CONFIRMED if is_free and not waits else Status.PENDING,
        payment_status=PaymentStatus.NOT_REQUIRED if is_free else PaymentStatus.UNPAID,
        confirmed_at=now if is_free and not waits else None,
        hold_expires_at=_first_hold(user=user, session=session, now=now, waits=waits),
    )
    try:
        # A savepoint, so the outer transaction survives the constraint error.
        with transaction.atomic():
            booking_transition(booking, actor=user, reason="created")
    except IntegrityError as error:
        if not _is_one_active_violation(error):
            raise
        raise BookingError(
            "You already have a booking for this session.", code="already_booked"
        ) from error
    waitlist.waitlist_user_booked(booking=booking)
    notifications.notify_booking_created(booking=booking)
    return booking


def _first_hold(*, user: User, session: Session, now: datetime, waits: bool) -> datetime | None:
    if session.is_free:
        return booking_rules.scheduled_hold_expires_at(session) if waits else None
    return _hold_expires_at(user=user, session=session, now=now)


def _check_hold_limit(*, user: User, now: datetime) -> None:
    """At most MAX_UNPAID_BOOKINGS unpaid holds per user. Caller holds lock_user(user)."""
    limit = settings.MAX_UNPAID_BOOKINGS
    if Booking.objects.filter(booking_rules.unpaid_holds_q(now), user=user).count() >= limit:
        raise BookingError(
            f"You already hold {limit} unpaid booking(s); pay or cancel one to book another.",
            code="too_many_holds",
        )


def _hold_expires_at(*, user: User, session: Session, now: datetime) -> datetime:
    """A fresh hold, unless this user cancelled an unpaid hold of this session that would still
    be running: then that one's end (cancelling and booking again must not buy more time, nor
    keep seats away from other people indefinitely). Caller holds the session lock."""
    inherited = (
        session.bookings.filter(
            user=user,
            status=Status.CANCELLED,
            payment_status__in=(PaymentStatus.UNPAID, PaymentStatus.FAILED),
            hold_expires_at__gt=now,
        )
        .order_by("-hold_expires_at")
        .values_list("hold_expires_at", flat=True)
        .first()
    )
    return inherited or booking_rules.new_hold_expires_at(now)


def booking_confirm(*, booking_id: int, actor: User, as_staff: bool = False) -> Booking:
    """The session's creator (or staff, from the admin) confirms a pending booking that needs
    no more payment."""
    with commit_then_raise():
        booking, _role = booking_for_update(
            actor=actor,
            booking_id=booking_id,
            allowed={Role.CREATOR, Role.STAFF},
            as_staff=as_staff,
        )
        if booking.status != Status.PENDING:
            raise BookingError(
                f"Only pending bookings can be confirmed; this one is {booking.status}.",
                code="invalid_transition",
            )
        if booking.session.status == Session.Status.CANCELLED:
            raise BookingError("This session has been cancelled.", code="session_cancelled")
        if booking.payment_status in (PaymentStatus.UNPAID, PaymentStatus.FAILED):
            raise BookingError(
                "This booking is for a paid session and has not been paid yet.", code="unpaid"
            )
        booking_transition(
            booking,
            actor=actor,
            reason="confirmed",
            status=Status.CONFIRMED,
            confirmed_at=timezone.now(),
        )
        notifications.notify_booking_confirmed(booking=booking)
    return booking


def booking_cancel(
    *, booking_id: int, actor: User, reason: str = "", as_staff: bool = False
) -> Booking:
    """Cancels a booking for its user (before the start), the session's creator, or staff
    (from the admin: `as_staff`).

    A paid booking is refunded as its session's refund policy says (in full when the creator
    or staff cancel; booking_rules.cancel_quote). Cancelling frees the seats at once.
    `reason` is recorded on the audit event (default: who cancelled).
    """
    with commit_then_raise():
        booking, role = booking_for_update(
            actor=actor,
            booking_id=booking_id,
            allowed={Role.OWNER, Role.CREATOR, Role.STAFF},
            as_staff=as_staff,
        )
        booking_cancel_locked(booking=booking, actor=actor, role=role, reason=reason)
        waitlist.waitlist_booking_ended(booking=booking)
    # The refund is a task after the commit: without a broker it has run by now (inline), so
    # the caller sees the payment as it stands. Only plain fields: loaded relations stay.
    booking.refresh_from_db(fields=["status", "payment_status", "refunded_amount", "updated_at"])
    return booking


def booking_cancel_locked(*, booking: Booking, actor: User, role: Role, reason: str = "") -> None:
    """Cancels a locked, non-stale booking. Caller holds lock_booking (and maybe the session).

    Refused (409) as `booking_rules.cancel_quote` says; otherwise the seats are freed and the
    quoted share of a paid booking is refunded (`cancellation_refund`).
    """
    quote = booking_rules.cancel_quote(booking=booking, by_owner=role == Role.OWNER)
    if not quote.allowed:
        _refuse_cancellation(quote)
    was_paid = booking.payment_status == PaymentStatus.PAID
    booking_transition(
        booking,
        actor=actor,
        reason=reason or f"cancelled_by_{role.value}",
        status=Status.CANCELLED,
        cancelled_at=timezone.now(),
        **({"refund_percent": quote.refund_percent} if was_paid else {}),
    )
    cancellation_refund(booking=booking, actor=actor, quote=quote)
    notifications.notify_booking_cancelled(booking=booking, by_creator=role != Role.OWNER)


def _refuse_cancellation(quote: booking_rules.CancelQuote) -> NoReturn:
    """Raises the quote's refusal, each code spelled out so the API docs list exactly these."""
    if quote.code == "not_active":
        raise BookingError(quote.detail, code="not_active")
    if quote.code == "session_started":
        raise BookingError(quote.detail, code="session_started")
    raise BookingError(quote.detail, code="cancellation_window")


def cancellation_refund(
    *, booking: Booking, actor: User | None, quote: booking_rules.CancelQuote
) -> None:
    """What a cancellation does about money: the quoted refund of a paid booking (an outbox
    task, refunds.py), or closing an unpaid booking's checkout. Caller holds lock_booking."""
    if booking.payment_status == PaymentStatus.PAID:
        refunds.refund_booking(booking=booking, actor=actor, amount=quote.refund_amount)
    elif booking.payment_status == PaymentStatus.SCHEDULED or booking.setup_intent_id:
        # Waiting for a session's decision: nothing was charged, so nothing is refunded; the
        # saved card is released and can never be charged for this booking.
        refunds.release_saved_card_after_commit(booking=booking)
    else:
        # An unpaid checkout must not be payable any more: otherwise paying it later would
        # bring back a booking its user or creator cancelled.
        refunds.cancel_open_intents_after_commit(booking_id=booking.pk)


def booking_refund(*, booking_id: int, actor: User) -> Booking:
    """Staff (the admin's "Refund"): refund a cancelled booking that is still paid.

    For a cancellation whose refund did not go through (Stripe failed after the fact).
    """
    with commit_then_raise():
        booking, _role = booking_for_update(
            actor=actor,
            booking_id=booking_id,
            allowed={Role.STAFF},
            as_staff=True,
            expire_stale=False,
        )
        if booking.payment_status != PaymentStatus.PAID:
            raise BookingError(
                f"Only paid bookings can be refunded; this one is {booking.payment_status}.",
                code="not_paid",
            )
        if booking.status in Booking.ACTIVE_STATUSES:
            raise BookingError(
                "Cancel the booking to refund it (it still holds its seats).", code="still_active"
            )
        refunds.refund_booking(booking=booking, actor=actor)
    return booking


_UNSET = object()


def booking_update(
    *, booking_id: int, actor: User, notes: str | object = _UNSET, seats: int | object = _UNSET
) -> Booking:
    """The booking's user changes `notes` and, while pending and unpaid, `seats`.

    A seat change is checked against the capacity under the session lock, like a new booking.
    The amount is recomputed from the price per seat at booking time (`amount / seats`), not
    from the session's current price: a price change never touches an existing booking.
    """
    with commit_then_raise():
        booking, _role = booking_for_update(
            actor=actor, booking_id=booking_id, allowed={Role.OWNER}
        )
        _update_checked(booking=booking, actor=actor, notes=notes, seats=seats)
    return booking


def _update_checked(*, booking: Booking, actor: User, notes: object, seats: object) -> None:
    changes: dict[str, object] = {}
    if booking.status not in Booking.ACTIVE_STATUSES:
        raise BookingError(f"A {booking.status} booking cannot be changed.", code="not_active")
    if seats is not _UNSET and seats != booking.seats:
        new_seats = booking_rules.validate_seats(seats)
        if booking.status != Status.PENDING or booking.payment_status != PaymentStatus.UNPAID:
            raise BookingError(
                "Seats can only be changed while the booking is pending and unpaid.",
                code="seats_locked",
            )
        if booking.session.start_time <= timezone.now():
            raise BookingError("This session has already started.", code="session_started")
        # An open PaymentIntent was created for the old amount: a payment on it must never
        # be for a different booking than the one the customer now sees.
        if (
            booking.payments.filter(kind=Payment.Kind.CHARGE)
            .exclude(status__in=("succeeded", "canceled"))
            .exists()
        ):
            raise BookingError(
                "Seats cannot change once payment has started; cancel and book again.",
                code="checkout_started",
            )
        booking_rules.check_seats_available(
            session=booking.session, seats=new_seats, exclude=booking
        )
        unit_price = booking.amount / booking.seats
        changes["amount"] = booking_rules.booking_amount(unit_price=unit_price, seats=new_seats)
        changes["seats"] = new_seats
    if notes is not _UNSET and notes != booking.notes:
        changes["notes"] = notes
    if changes:
        reason = "seats_changed" if "seats" in changes else "notes_changed"
        booking_transition(booking, actor=actor, reason=reason, **changes)
