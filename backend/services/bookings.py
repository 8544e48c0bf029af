"""Booking writes: create, confirm, cancel, expire.

The capacity rule (CONTRACT.md, "Booking rules") holds under concurrency because every write
that changes the seats taken of a session first locks that session's row.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from backend.exceptions import BookingError, NotFound, ValidationFailed
from backend.models import Booking, Session, User

MAX_SEATS_PER_BOOKING = 10

Status = Booking.Status
PaymentStatus = Booking.PaymentStatus

# The booking lifecycle. A move not listed here is a 409 with the reason.
# expired/cancelled -> confirmed exists only for a Stripe payment that succeeds late (the
# payment service checks the seats again under the session lock before using it).
STATUS_TRANSITIONS: dict[str, set[str]] = {
    Status.PENDING: {Status.CONFIRMED, Status.CANCELLED, Status.EXPIRED},
    Status.CONFIRMED: {Status.CANCELLED},
    Status.EXPIRED: {Status.CONFIRMED},
    Status.CANCELLED: {Status.CONFIRMED},
}

# Payment statuses only move forward, so out-of-order webhooks cannot undo a payment.
PAYMENT_TRANSITIONS: dict[str, set[str]] = {
    PaymentStatus.NOT_REQUIRED: set(),
    PaymentStatus.UNPAID: {PaymentStatus.PAID, PaymentStatus.FAILED},
    PaymentStatus.FAILED: {PaymentStatus.PAID},
    PaymentStatus.PAID: {PaymentStatus.REFUNDED},
    PaymentStatus.REFUNDED: set(),
}


def hold_cutoff(now=None):
    """Pending bookings created before this instant no longer hold seats."""
    now = now or timezone.now()
    return now - timedelta(minutes=settings.BOOKING_HOLD_MINUTES)


def seat_holding_q(now=None) -> Q:
    """Bookings that take seats: confirmed, or pending within the hold."""
    return Q(status=Status.CONFIRMED) | Q(status=Status.PENDING, created_at__gte=hold_cutoff(now))


def seats_taken(*, session: Session, now=None) -> int:
    return session.bookings.filter(seat_holding_q(now)).aggregate(total=Sum("seats"))["total"] or 0


def set_status(booking: Booking, new_status: str) -> None:
    if new_status not in STATUS_TRANSITIONS.get(booking.status, set()):
        raise BookingError(
            f"A {booking.status} booking cannot become {new_status}.", code="invalid_transition"
        )
    booking.status = new_status


def set_payment_status(booking: Booking, new_status: str) -> None:
    if new_status not in PAYMENT_TRANSITIONS.get(booking.payment_status, set()):
        raise BookingError(
            f"Payment status {booking.payment_status} cannot become {new_status}.",
            code="invalid_payment_transition",
        )
    booking.payment_status = new_status


def bookings_expire_stale(*, session: Session | None = None, now=None) -> int:
    """Marks pending bookings past their hold as expired; returns how many."""
    stale = Booking.objects.filter(status=Status.PENDING, created_at__lt=hold_cutoff(now))
    if session is not None:
        stale = stale.filter(session=session)
    return stale.update(status=Status.EXPIRED, updated_at=now or timezone.now())


def lock_session(*, session_id: int) -> Session:
    """Locks the session row until the end of the caller's transaction."""
    try:
        return Session.objects.select_for_update().get(pk=session_id)
    except Session.DoesNotExist as error:
        raise NotFound("Session not found.") from error


def check_seats_available(*, session: Session, seats: int, exclude: Booking | None = None) -> None:
    """Raises 'sold out' unless `seats` more fit. Caller holds the session row lock."""
    taken = seats_taken(session=session)
    if exclude is not None and exclude.status in Booking.ACTIVE_STATUSES:
        taken -= exclude.seats
    seats_left = max(session.capacity - taken, 0)
    if seats > seats_left:
        if seats_left == 0:
            raise BookingError("This session is sold out.", code="sold_out")
        raise BookingError(
            f"Only {seats_left} seat(s) left for this session.", code="not_enough_seats"
        )


def validate_seats(seats: int) -> None:
    if not 1 <= seats <= MAX_SEATS_PER_BOOKING:
        raise ValidationFailed(
            f"seats must be between 1 and {MAX_SEATS_PER_BOOKING}.", code="invalid_seats"
        )


@transaction.atomic
def booking_create(*, user: User, session_id: int, seats: int = 1, notes: str = "") -> Booking:
    validate_seats(seats)
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

    bookings_expire_stale(session=session, now=now)
    if session.bookings.filter(user=user, status__in=Booking.ACTIVE_STATUSES).exists():
        raise BookingError("You already have a booking for this session.", code="already_booked")
    check_seats_available(session=session, seats=seats)

    is_free = session.price == Decimal("0")
    booking = Booking(
        session=session,
        user=user,
        seats=seats,
        notes=notes,
        amount=session.price * seats,
        currency=session.currency,
        status=Status.CONFIRMED if is_free else Status.PENDING,
        payment_status=PaymentStatus.NOT_REQUIRED if is_free else PaymentStatus.UNPAID,
        confirmed_at=now if is_free else None,
    )
    try:
        with transaction.atomic():
            booking.save()
    except IntegrityError as error:
        raise BookingError(
            "You already have a booking for this session.", code="already_booked"
        ) from error
    return booking


def lock_booking(*, booking_id: int) -> Booking:
    """Locks a booking and its session (session first: the same order as booking_create)."""
    session_id = Booking.objects.filter(pk=booking_id).values_list("session_id", flat=True).first()
    if session_id is None:
        raise NotFound("Booking not found.")
    lock_session(session_id=session_id)
    return Booking.objects.select_for_update().select_related("session", "user").get(pk=booking_id)


@transaction.atomic
def booking_confirm(*, booking_id: int, actor: User) -> Booking:
    """The session's creator confirms a pending booking that needs no (further) payment."""
    booking = lock_booking(booking_id=booking_id)
    if booking.session.creator_id != actor.pk and not actor.is_staff:
        raise NotFound("Booking not found.")
    if booking.status == Status.PENDING and booking.created_at < hold_cutoff():
        set_status(booking, Status.EXPIRED)
        booking.save(update_fields=["status", "updated_at"])
        raise BookingError("This booking's hold has expired.", code="expired")
    if booking.payment_status in (PaymentStatus.UNPAID, PaymentStatus.FAILED):
        raise BookingError(
            "This booking is for a paid session and has not been paid yet.", code="unpaid"
        )
    set_status(booking, Status.CONFIRMED)
    booking.confirmed_at = timezone.now()
    booking.save(update_fields=["status", "confirmed_at", "updated_at"])
    return booking


@transaction.atomic
def booking_cancel(*, booking_id: int, actor: User) -> Booking:
    """Cancels a booking for its user (before the start) or the session's creator.

    A paid booking is refunded through the payment service after the cancellation commits.
    """
    booking = lock_booking(booking_id=booking_id)
    session = booking.session
    is_owner = booking.user_id == actor.pk
    is_creator = session.creator_id == actor.pk or actor.is_staff
    if not (is_owner or is_creator):
        raise NotFound("Booking not found.")
    if booking.status not in Booking.ACTIVE_STATUSES:
        raise BookingError(f"A {booking.status} booking cannot be cancelled.", code="not_active")
    now = timezone.now()
    if is_owner and not is_creator:
        if session.start_time <= now:
            raise BookingError(
                "This session has already started; it can no longer be cancelled.",
                code="session_started",
            )
        window = timedelta(hours=settings.CANCELLATION_WINDOW_HOURS)
        if booking.payment_status == PaymentStatus.PAID and session.start_time - now < window:
            raise BookingError(
                f"Paid bookings can be cancelled up to {settings.CANCELLATION_WINDOW_HOURS} "
                "hours before the session starts.",
                code="cancellation_window",
            )
    set_status(booking, Status.CANCELLED)
    booking.cancelled_at = now
    booking.save(update_fields=["status", "cancelled_at", "updated_at"])
    if booking.payment_status == PaymentStatus.PAID:
        from backend.services.payments import payment_refund_booking

        payment_refund_booking(booking=booking)
    return booking
