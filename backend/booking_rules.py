"""The booking rules both the writes (services) and the reads (selectors) stand on.

One place for: which bookings take seats (`seat_holding_q`, used by the booking service, the
catalog and the dashboards), how many seats are left, how many seats one booking may have, what
a booking costs, and the two state machines (booking status, payment status). Nothing here
writes or locks; the services that do import these rules (CONTRACT.md, "Booking rules").
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, CharField, Q, Sum, Value, When
from django.utils import timezone

from backend.exceptions import BookingError, ValidationFailed
from backend.models import Booking, Session

MAX_SEATS_PER_BOOKING = 10

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

# Payment statuses only move forward, so out-of-order webhooks cannot undo a payment. The one
# way back is a dispute (charge.dispute.created) that the platform wins (charge.dispute.closed,
# `won`): disputed -> paid; a lost one ends refunded, the money gone back to the cardholder.
PAYMENT_TRANSITIONS: dict[str, set[str]] = {
    PaymentStatus.NOT_REQUIRED: set(),
    PaymentStatus.UNPAID: {PaymentStatus.PAID, PaymentStatus.FAILED},
    PaymentStatus.FAILED: {PaymentStatus.PAID},
    PaymentStatus.PAID: {PaymentStatus.REFUNDED, PaymentStatus.DISPUTED},
    PaymentStatus.DISPUTED: {PaymentStatus.PAID, PaymentStatus.REFUNDED},
    PaymentStatus.REFUNDED: set(),
}


def check_status_move(booking: Booking, new_status: str) -> None:
    if new_status not in STATUS_TRANSITIONS.get(booking.status, set()):
        raise BookingError(
            f"A {booking.status} booking cannot become {new_status}.", code="invalid_transition"
        )


def check_payment_move(booking: Booking, new_status: str) -> None:
    if new_status not in PAYMENT_TRANSITIONS.get(booking.payment_status, set()):
        raise BookingError(
            f"Payment status {booking.payment_status} cannot become {new_status}.",
            code="invalid_payment_transition",
        )


def payment_move_allowed(booking: Booking, new_status: str) -> bool:
    return new_status in PAYMENT_TRANSITIONS.get(booking.payment_status, set())


# --- holds and seats --------------------------------------------------------------------------


def new_hold_expires_at(now: datetime | None = None) -> datetime:
    """When a hold that starts now ends (BOOKING_HOLD_MINUTES)."""
    return (now or timezone.now()) + timedelta(minutes=settings.BOOKING_HOLD_MINUTES)


def offer_hold_expires_at(now: datetime | None = None) -> datetime:
    """When a waitlist offer made now ends (WAITLIST_OFFER_MINUTES)."""
    return (now or timezone.now()) + timedelta(minutes=settings.WAITLIST_OFFER_MINUTES)


def seat_holding_q(now: datetime | None = None, prefix: str = "") -> Q:
    """Bookings that take seats: confirmed, or pending until their `hold_expires_at`.

    `prefix` ("bookings__") applies the same rule from a related model.
    """
    return Q(**{f"{prefix}status": Status.CONFIRMED}) | Q(
        **{
            f"{prefix}status": Status.PENDING,
            f"{prefix}hold_expires_at__gt": now or timezone.now(),
        }
    )


def stale_hold_q(now: datetime | None = None, prefix: str = "") -> Q:
    """Pending bookings whose hold has run out: they take no seats and are due to expire.

    A pending row without `hold_expires_at` (none is written so) counts as run out.
    """
    return Q(**{f"{prefix}status": Status.PENDING}) & (
        Q(**{f"{prefix}hold_expires_at__lte": now or timezone.now()})
        | Q(**{f"{prefix}hold_expires_at__isnull": True})
    )


def is_stale(booking: Booking, now: datetime | None = None) -> bool:
    """A pending booking whose hold has run out (it no longer takes seats)."""
    return booking.status == Status.PENDING and (
        booking.hold_expires_at is None or booking.hold_expires_at <= (now or timezone.now())
    )


def unpaid_holds_q(now: datetime | None = None) -> Q:
    """A user's bookings that count against MAX_UNPAID_BOOKINGS: pending, unpaid, holding."""
    return Q(
        status=Status.PENDING,
        payment_status__in=(PaymentStatus.UNPAID, PaymentStatus.FAILED),
        hold_expires_at__gt=now or timezone.now(),
    )


def shown_status(now: datetime | None = None) -> Case:
    """The status a reader sees: a pending booking past its hold reads as expired.

    Reads never write; the periodic expiry (and any write that touches the booking) makes the
    row itself say so soon after.
    """
    return Case(
        When(stale_hold_q(now), then=Value(Status.EXPIRED)),
        default="status",
        output_field=CharField(),
    )


def seats_taken(
    *, session: Session, now: datetime | None = None, exclude_booking_id: int | None = None
) -> int:
    bookings = session.bookings.filter(seat_holding_q(now))
    if exclude_booking_id is not None:
        bookings = bookings.exclude(pk=exclude_booking_id)
    return bookings.aggregate(total=Sum("seats"))["total"] or 0


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
    """Refuses a capacity below the seats already taken. Caller holds the session row lock."""
    taken = seats_taken(session=session)
    if capacity < taken:
        raise BookingError(
            f"{taken} seat(s) are already booked; capacity cannot be lower.",
            code="capacity_below_seats_taken",
        )


def validate_seats(seats: object) -> int:
    if isinstance(seats, bool) or not isinstance(seats, int):
        raise ValidationFailed("seats must be an integer.", code="invalid_seats")
    if not 1 <= seats <= MAX_SEATS_PER_BOOKING:
        raise ValidationFailed(
            f"seats must be between 1 and {MAX_SEATS_PER_BOOKING}.", code="invalid_seats"
        )
    return seats


def booking_amount(*, unit_price: Decimal, seats: int) -> Decimal:
    return (unit_price * seats).quantize(Decimal("0.01"))


def cancellation_window() -> timedelta:
    """How long before the start a user may still cancel a paid booking (with a refund)."""
    return timedelta(hours=settings.CANCELLATION_WINDOW_HOURS)


def status_as_shown(booking: Booking) -> str:
    """`shown_status` for one booking: its annotation when the selector added it, else the rule."""
    annotated = getattr(booking, "shown_status", None)
    if annotated:
        return annotated
    return Status.EXPIRED if is_stale(booking) else booking.status
