"""The booking rules both the writes (services) and the reads (selectors) stand on.

One place for: which bookings take seats (`seat_holding_q`, used by the booking service, the
catalog and the dashboards), how many seats are left, how many seats one booking may have, what
a booking costs, and the two state machines (booking status, payment status). Nothing here
writes or locks; the services that do import these rules (CONTRACT.md, "Booking rules").
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Case, CharField, Q, Sum, Value, When
from django.utils import timezone

from backend import money
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
# A session with a minimum: unpaid -> scheduled once the card is saved (SetupIntent), then at
# the decision scheduled -> paid (the off-session charge) or failed (declined, or the bank wants
# the customer: a normal hold to pay on-session follows). A scheduled booking cancelled (or
# called off) keeps `scheduled`: nothing was ever charged, so there is nothing to refund.
PAYMENT_TRANSITIONS: dict[str, set[str]] = {
    PaymentStatus.NOT_REQUIRED: set(),
    PaymentStatus.UNPAID: {PaymentStatus.PAID, PaymentStatus.FAILED, PaymentStatus.SCHEDULED},
    PaymentStatus.SCHEDULED: {PaymentStatus.PAID, PaymentStatus.FAILED},
    PaymentStatus.FAILED: {PaymentStatus.PAID, PaymentStatus.SCHEDULED},
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


# --- sessions that run only if enough people book (CONTRACT.md) --------------------------------

DEFAULT_DECISION_LEAD = timedelta(hours=48)
# The decision is at least this long after publishing and before the start.
DECISION_MARGIN = timedelta(hours=1)
DECISION_RUNS = "runs"
DECISION_CALLED_OFF = "called_off"
MINIMUM_NOT_REACHED = "minimum_not_reached"


def decides_later(session: Session, now: datetime | None = None) -> bool:
    """A booking made now waits for the session's decision: it has a minimum, the decision is
    still ahead and has not been made. After it, bookings follow the v1 rules."""
    return (
        session.min_attendees is not None
        and session.decided_at is None
        and session.decision_at is not None
        and (now or timezone.now()) < session.decision_at
    )


def committed_q(now: datetime | None = None, prefix: str = "") -> Q:
    """Bookings that count towards the minimum: confirmed, or pending with the card saved
    (`scheduled`) or needing no payment, within their hold. An unpaid hold whose card is not
    saved yet holds a seat but has committed to nothing."""
    return Q(**{f"{prefix}status": Status.CONFIRMED}) | Q(
        **{
            f"{prefix}status": Status.PENDING,
            f"{prefix}payment_status__in": (PaymentStatus.SCHEDULED, PaymentStatus.NOT_REQUIRED),
            f"{prefix}hold_expires_at__gt": now or timezone.now(),
        }
    )


def committed_seats(*, session: Session, now: datetime | None = None) -> int:
    """Seats that count towards `min_attendees`. The decision reads it under the session lock."""
    return session.bookings.filter(committed_q(now)).aggregate(total=Sum("seats"))["total"] or 0


def seats_to_go(*, min_attendees: int | None, committed: int) -> int:
    return max((min_attendees or 0) - committed, 0)


def scheduled_hold_expires_at(session: Session) -> datetime:
    """A booking waiting for the decision holds its seat until the start: the decision job
    replaces it (confirmed, a short hold to pay, or cancelled) long before then."""
    return session.start_time


def default_decision_at(start_time: datetime) -> datetime:
    return start_time - DEFAULT_DECISION_LEAD


def check_minimum_settings(
    *,
    min_attendees: int | None,
    decision_at: datetime | None,
    start_time: datetime,
    capacity: int,
    publishing_at: datetime | None,
) -> None:
    """The contract's bounds: 1 <= min_attendees <= capacity; the decision at least an hour
    before the start and, when the session is (being) published, an hour from now."""
    if min_attendees is None:
        return
    if min_attendees > capacity:
        raise ValidationFailed("min_attendees cannot exceed the capacity.", code="invalid_minimum")
    if decision_at is None:
        return
    if decision_at > start_time - DECISION_MARGIN:
        raise ValidationFailed(
            "decision_at must be at least 1 hour before the start time.", code="invalid_decision_at"
        )
    if publishing_at is not None and decision_at < publishing_at + DECISION_MARGIN:
        raise ValidationFailed(
            "decision_at must be at least 1 hour after the session is published.",
            code="invalid_decision_at",
        )


def booking_amount(*, unit_price: Decimal, seats: int) -> Decimal:
    return (unit_price * seats).quantize(Decimal("0.01"))


def cancellation_window() -> timedelta:
    """v1's one rule, now the default refund policy's only tier (`default_refund_policy`)."""
    return timedelta(hours=settings.CANCELLATION_WINDOW_HOURS)


# --- cancellation policy and refunds (CONTRACT.md, "Cancellation policy ...") ------------------

MAX_REFUND_TIERS = 5
ZERO = Decimal("0.00")


def default_refund_policy() -> list[dict[str, int]]:
    """v1's rule as a policy: full refund up to CANCELLATION_WINDOW_HOURS before, then refused.

    A session whose `refund_policy` is null follows it, read at the moment of cancelling, so a
    deployment that changes the setting changes it for those sessions (as in v1).
    """
    return [{"hours_before": settings.CANCELLATION_WINDOW_HOURS, "refund_percent": 100}]


def refund_policy_of(session: Session) -> list[dict[str, int]]:
    """The session's tiers, largest `hours_before` first (the order they are tried in)."""
    tiers = session.refund_policy if session.refund_policy else default_refund_policy()
    return sorted(tiers, key=lambda tier: tier["hours_before"], reverse=True)


def refund_percent_at(*, policy: list[dict[str, int]], hours_left: float) -> int | None:
    """The percent of the tier with the largest `hours_before` <= `hours_left`; None: refused."""
    applicable = [tier for tier in policy if tier["hours_before"] <= hours_left]
    if not applicable:
        return None
    return max(applicable, key=lambda tier: tier["hours_before"])["refund_percent"]


def refund_amount(*, amount: Decimal, percent: int, currency: str) -> Decimal:
    """`percent` of `amount`, rounded half up to the currency's minor unit (12.345 -> 12.35,
    JPY 1234.5 -> 1235), returned with 2 places like every amount."""
    step = Decimal(1).scaleb(-min(money.minor_unit_exponent(currency), 2))
    share = (amount * Decimal(percent) / Decimal(100)).quantize(step, rounding=ROUND_HALF_UP)
    return share.quantize(money.CENT)


@dataclass(frozen=True)
class CancelQuote:
    """What cancelling a booking now would do: allowed or not (`code`, `detail` say why not),
    and the refund it would bring. Nothing paid, nothing to refund: percent and amount 0."""

    allowed: bool
    refund_percent: int
    refund_amount: Decimal
    currency: str
    code: str | None = None
    detail: str = ""


def cancel_quote(*, booking: Booking, by_owner: bool, now: datetime | None = None) -> CancelQuote:
    """The one cancellation rule, for the cancel itself (under the booking lock) and its quote.

    `by_owner`: the person who booked cancels; otherwise the session's creator or staff, who
    always refund in full, as does the session's cancellation. So does the owner once the
    creator moved the session's time after they booked (`session_moved_at`): they never agreed
    to the new time. Otherwise the percent comes from the session's policy at this moment.
    """
    now = now or timezone.now()
    session = booking.session

    def refused(code: str, detail: str) -> CancelQuote:
        return CancelQuote(False, 0, ZERO, booking.currency, code, detail)

    if booking.status not in Booking.ACTIVE_STATUSES:
        return refused("not_active", f"A {booking.status} booking cannot be cancelled.")
    if by_owner and session.start_time <= now:
        return refused(
            "session_started", "This session has already started; it can no longer be cancelled."
        )
    if booking.payment_status != PaymentStatus.PAID:
        return CancelQuote(True, 0, ZERO, booking.currency)
    percent: int | None = 100
    if by_owner and booking.session_moved_at is None:
        hours_left = (session.start_time - now).total_seconds() / 3600
        percent = refund_percent_at(policy=refund_policy_of(session), hours_left=hours_left)
    if percent is None:
        policy = refund_policy_of(session)
        latest = min(tier["hours_before"] for tier in policy)
        return refused(
            "cancellation_window",
            f"Paid bookings of this session can be cancelled up to {latest:g} hours before "
            "it starts.",
        )
    # What the policy grants of the whole amount, less what was given back already (a refund
    # made from Stripe's dashboard): the total returned never exceeds the policy's share.
    granted = refund_amount(amount=booking.amount, percent=percent, currency=booking.currency)
    return CancelQuote(
        True, percent, max(granted - booking.refunded_amount, ZERO), booking.currency
    )


def status_as_shown(booking: Booking) -> str:
    """`shown_status` for one booking: its annotation when the selector added it, else the rule."""
    annotated = getattr(booking, "shown_status", None)
    if annotated:
        return annotated
    return Status.EXPIRED if is_stale(booking) else booking.status
