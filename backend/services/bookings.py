"""Booking writes: create, update, confirm, cancel, expire.

The capacity rule (CONTRACT.md, "Booking rules") holds under concurrency because every write
that changes the seats taken of a session first locks that session's row (`lock_session`), and
every write to one booking locks the session and then the booking (`lock_booking`), always in
that order so two writers cannot deadlock.

Lazy expiry: a pending booking past its hold stops taking seats at once (`seat_holding_q`); the
row itself is marked `expired` the next time somebody counts the seats, reads or touches it, or
when cron runs `manage.py expire_bookings`.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from backend.exceptions import BookingError, Forbidden, NotFound, ValidationFailed
from backend.models import Booking, Payment, Session, User
from backend.services import notifications

MAX_SEATS_PER_BOOKING = 10
ONE_ACTIVE_CONSTRAINT = "booking_one_active_per_user_session"

Status = Booking.Status
PaymentStatus = Booking.PaymentStatus

# The booking lifecycle. A move not listed here is a 409 with the reason.
# expired/cancelled -> confirmed exists only for a Stripe payment that succeeds late (the
# payment service checks the seats again under the session lock before using it); the
# creator's `booking_confirm` accepts pending bookings only.
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


def seats_taken(*, session: Session, now=None, exclude_booking_id: int | None = None) -> int:
    bookings = session.bookings.filter(seat_holding_q(now))
    if exclude_booking_id is not None:
        bookings = bookings.exclude(pk=exclude_booking_id)
    return bookings.aggregate(total=Sum("seats"))["total"] or 0


def is_stale(booking: Booking, now=None) -> bool:
    """A pending booking whose hold has run out (it no longer takes seats)."""
    return booking.status == Status.PENDING and booking.created_at < hold_cutoff(now)


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


def bookings_expire_stale(
    *,
    session: Session | None = None,
    user: User | None = None,
    booking_id: int | None = None,
    now=None,
) -> int:
    """Marks pending bookings past their hold as expired; returns how many.

    Scoped to a session, to a user's own bookings, or to one booking; unscoped for cron.
    Expiring leaks nothing whoever triggers it: it only records what is already true.
    One UPDATE whose WHERE is re-checked by PostgreSQL after any row lock it waits for, so a
    booking confirmed meanwhile stays confirmed.
    """
    stale = Booking.objects.filter(status=Status.PENDING, created_at__lt=hold_cutoff(now))
    if session is not None:
        stale = stale.filter(session=session)
    if user is not None:
        stale = stale.filter(user=user)
    if booking_id is not None:
        stale = stale.filter(pk=booking_id)
    return stale.update(status=Status.EXPIRED, updated_at=now or timezone.now())


def lock_session(*, session_id: int) -> Session:
    """Locks the session row until the end of the caller's transaction.

    The creator comes along (for the notifications), unlocked: `of=("self",)`.
    """
    try:
        return (
            Session.objects.select_for_update(of=("self",))
            .select_related("creator")
            .get(pk=session_id)
        )
    except Session.DoesNotExist as error:
        raise NotFound("Session not found.") from error


def check_seats_available(*, session: Session, seats: int, exclude: Booking | None = None) -> None:
    """Raises 'sold out' unless `seats` more fit. Caller holds the session row lock.

    `exclude`: a booking whose own seats are being replaced (a seat change, a late payment);
    it is left out of the count whatever its status, so its seats are never subtracted twice
    or subtracted while it no longer holds any.
    """
    taken = seats_taken(session=session, exclude_booking_id=exclude.pk if exclude else None)
    seats_left = max(session.capacity - taken, 0)
    if seats > seats_left:
        if seats_left == 0:
            raise BookingError("This session is sold out.", code="sold_out")
        raise BookingError(
            f"Only {seats_left} seat(s) left for this session.", code="not_enough_seats"
        )


def check_capacity_covers_bookings(*, session: Session, capacity: int) -> None:
    """Refuses a capacity below the seats already taken. Caller holds the session row lock.

    For the catalog's session update: lock_session, this check, then save the new capacity,
    all in one transaction, so a booking cannot slip in between the check and the save.
    """
    taken = seats_taken(session=session)
    if capacity < taken:
        raise BookingError(
            f"{taken} seat(s) are already booked; capacity cannot be lower.",
            code="capacity_below_bookings",
        )


def validate_seats(seats: int) -> None:
    if isinstance(seats, bool) or not isinstance(seats, int):
        raise ValidationFailed("seats must be an integer.", code="invalid_seats")
    if not 1 <= seats <= MAX_SEATS_PER_BOOKING:
        raise ValidationFailed(
            f"seats must be between 1 and {MAX_SEATS_PER_BOOKING}.", code="invalid_seats"
        )


def _is_one_active_violation(error: IntegrityError) -> bool:
    # PostgreSQL names the constraint; SQLite only names the columns of the unique index.
    diag = getattr(error.__cause__, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name == ONE_ACTIVE_CONSTRAINT
    message = str(error)
    return ONE_ACTIVE_CONSTRAINT in message or "UNIQUE constraint failed: bookings." in message


def booking_amount(*, unit_price: Decimal, seats: int) -> Decimal:
    return (unit_price * seats).quantize(Decimal("0.01"))


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
        amount=booking_amount(unit_price=session.price, seats=seats),
        currency=session.currency.upper(),
        status=Status.CONFIRMED if is_free else Status.PENDING,
        payment_status=PaymentStatus.NOT_REQUIRED if is_free else PaymentStatus.UNPAID,
        confirmed_at=now if is_free else None,
    )
    try:
        # A savepoint, so the outer transaction survives the constraint error.
        with transaction.atomic():
            booking.save()
    except IntegrityError as error:
        if not _is_one_active_violation(error):
            raise
        raise BookingError(
            "You already have a booking for this session.", code="already_booked"
        ) from error
    notifications.notify_booking_created(booking=booking)
    return booking


def lock_booking(*, booking_id: int) -> Booking:
    """Locks a booking and its session (session first: the same order as booking_create).

    The session (with its creator) and the user come back loaded, but only the booking and
    session rows are locked: `of=("self",)` keeps FOR UPDATE off the joined user rows.
    """
    session_id = Booking.objects.filter(pk=booking_id).values_list("session_id", flat=True).first()
    if session_id is None:
        raise NotFound("Booking not found.")
    lock_session(session_id=session_id)
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related("session__creator", "user")
        .get(pk=booking_id)
    )


def _expire(booking: Booking, now) -> None:
    set_status(booking, Status.EXPIRED)
    booking.save(update_fields=["status", "updated_at"])


def _raise_expired() -> None:
    raise BookingError("This booking's hold has expired.", code="expired")


def booking_confirm(*, booking_id: int, actor: User) -> Booking:
    """The session's creator confirms a pending booking that needs no (further) payment."""
    # Not one atomic block around the whole function: when the booking turns out to be past
    # its hold, marking it expired must commit even though the caller gets a 409.
    with transaction.atomic():
        booking = lock_booking(booking_id=booking_id)
        session = booking.session
        is_creator = session.creator_id == actor.pk
        if not is_creator:
            if booking.user_id == actor.pk:
                raise Forbidden(
                    "Only the session's creator can confirm a booking.", code="not_creator"
                )
            raise NotFound("Booking not found.")
        now = timezone.now()
        expired = is_stale(booking, now)
        if expired:
            _expire(booking, now)
        else:
            if booking.status != Status.PENDING:
                raise BookingError(
                    f"Only pending bookings can be confirmed; this one is {booking.status}.",
                    code="invalid_transition",
                )
            if session.status == Session.Status.CANCELLED:
                raise BookingError("This session has been cancelled.", code="session_cancelled")
            if booking.payment_status in (PaymentStatus.UNPAID, PaymentStatus.FAILED):
                raise BookingError(
                    "This booking is for a paid session and has not been paid yet.",
                    code="unpaid",
                )
            set_status(booking, Status.CONFIRMED)
            booking.confirmed_at = now
            booking.save(update_fields=["status", "confirmed_at", "updated_at"])
            notifications.notify_booking_confirmed(booking=booking)
    if expired:
        _raise_expired()
    return booking


def booking_cancel(*, booking_id: int, actor: User) -> Booking:
    """Cancels a booking for its user (before the start) or the session's creator.

    A paid booking is refunded through the payment service's hook, in the same transaction.
    Cancelling frees the seats at once (a cancelled booking is not counted).
    """
    with transaction.atomic():
        booking = lock_booking(booking_id=booking_id)
        session = booking.session
        is_owner = booking.user_id == actor.pk
        is_creator = session.creator_id == actor.pk
        if not (is_owner or is_creator):
            raise NotFound("Booking not found.")
        now = timezone.now()
        expired = is_stale(booking, now)
        if expired:
            _expire(booking, now)
        else:
            _cancel_checked(booking=booking, is_owner=is_owner, is_creator=is_creator, now=now)
            notifications.notify_booking_cancelled(booking=booking, by_creator=is_creator)
    if expired:
        _raise_expired()
    return booking


def _cancel_checked(*, booking: Booking, is_owner: bool, is_creator: bool, now) -> None:
    session = booking.session
    if booking.status not in Booking.ACTIVE_STATUSES:
        raise BookingError(f"A {booking.status} booking cannot be cancelled.", code="not_active")
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
    from backend.services.payments import payment_cancel_open_intents, payment_refund_booking

    if booking.payment_status == PaymentStatus.PAID:
        payment_refund_booking(booking=booking)
    else:
        # An unpaid checkout must not be payable any more: otherwise paying it later would
        # bring back a booking its user or creator cancelled.
        booking_id = booking.pk
        transaction.on_commit(lambda: payment_cancel_open_intents(booking_id=booking_id))


_UNSET = object()


def booking_update(
    *, booking_id: int, actor: User, notes: str | object = _UNSET, seats: int | object = _UNSET
) -> Booking:
    """The booking's user changes `notes` and, while pending and unpaid, `seats`.

    A seat change is checked against the capacity under the session lock, like a new booking.
    The amount is recomputed from the price per seat at booking time (`amount / seats`), not
    from the session's current price: a price change never touches an existing booking.
    """
    with transaction.atomic():
        booking = lock_booking(booking_id=booking_id)
        session = booking.session
        if booking.user_id != actor.pk:
            if session.creator_id == actor.pk:
                raise Forbidden(
                    "Only the person who booked can change a booking.", code="not_owner"
                )
            raise NotFound("Booking not found.")
        now = timezone.now()
        expired = is_stale(booking, now)
        if expired:
            _expire(booking, now)
        else:
            _update_checked(booking=booking, notes=notes, seats=seats, now=now)
    if expired:
        _raise_expired()
    return booking


def _update_checked(*, booking: Booking, notes, seats, now) -> None:
    changed: list[str] = []
    if booking.status not in Booking.ACTIVE_STATUSES:
        raise BookingError(f"A {booking.status} booking cannot be changed.", code="not_active")
    if seats is not _UNSET and seats != booking.seats:
        validate_seats(seats)
        if booking.status != Status.PENDING or booking.payment_status != PaymentStatus.UNPAID:
            raise BookingError(
                "Seats can only be changed while the booking is pending and unpaid.",
                code="seats_locked",
            )
        if booking.session.start_time <= now:
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
        check_seats_available(session=booking.session, seats=seats, exclude=booking)
        unit_price = booking.amount / booking.seats
        booking.amount = booking_amount(unit_price=unit_price, seats=seats)
        booking.seats = seats
        changed += ["seats", "amount"]
    if notes is not _UNSET and notes != booking.notes:
        booking.notes = notes
        changed.append("notes")
    if changed:
        booking.save(update_fields=[*changed, "updated_at"])
