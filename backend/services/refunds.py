"""Refunds of paid bookings, and cancelling the open checkout of an unpaid one.

Every Stripe call that moves money carries an idempotency key made from our own ids, so a retry
after an ambiguous failure (a timeout after Stripe acted) returns the first result instead of
refunding again. `payment_status` becomes `refunded` only once Stripe says the refund succeeded.
"""

import logging

from django.db import transaction

from backend import money
from backend.exceptions import BookingError, DomainError
from backend.integrations import stripe_gateway
from backend.integrations.stripe_gateway import INTENT_FINAL_STATUSES
from backend.models import Booking, Payment, User
from backend.services.booking_changes import booking_transition
from backend.services.locking import lock_booking
from backend.services.payment_records import (
    record_intent,
    record_payment,
    refunded_total,
    succeeded_charge,
)

logger = logging.getLogger(__name__)

PaymentStatus = Booking.PaymentStatus
Kind = Payment.Kind


def apply_refund_state(booking: Booking, *, actor: User | None, reason: str) -> bool:
    """Brings `refunded_amount` (and `refunded` once all is back) in line with the refund rows.

    Caller holds lock_booking. Returns whether the booking changed (one audit event if so).
    """
    refunded = refunded_total(booking)
    changes: dict[str, object] = {}
    if refunded != booking.refunded_amount:
        changes["refunded_amount"] = refunded
    payment_status = None
    if (
        refunded >= booking.amount
        and booking.payment_status == PaymentStatus.PAID
        and booking.amount > 0
    ):
        payment_status = PaymentStatus.REFUNDED
    if not changes and payment_status is None:
        return False
    booking_transition(
        booking, actor=actor, reason=reason, payment_status=payment_status, **changes
    )
    return True


def refund_charge(
    *, booking: Booking, charge: Payment, actor: User | None, reason: str = "refunded"
) -> Payment:
    """Refunds a charge in full; the booking is refunded once Stripe says it succeeded.

    The idempotency key is the charge's own id: however often this runs for one charge (a retry
    after a timeout, a replayed event), Stripe creates one refund. Caller holds lock_booking.
    """
    refund = stripe_gateway.create_refund(
        payment_intent_id=charge.stripe_id,
        metadata={"booking_id": str(booking.pk)},
        idempotency_key=f"sm-refund-{charge.stripe_id}",
    )
    refund_row = record_payment(
        booking=booking,
        kind=Kind.REFUND,
        stripe_id=refund.id,
        amount=money.from_minor_units(refund.amount, refund.currency or charge.currency),
        currency=refund.currency or charge.currency,
        status=refund.status,
    )
    if refund.status in ("failed", "canceled"):
        logger.error("refund %s for booking %s is %s", refund.id, booking.pk, refund.status)
    apply_refund_state(booking, actor=actor, reason=reason)
    return refund_row


def refund_booking(*, booking: Booking, actor: User | None) -> None:
    """Refunds a paid booking in full. Caller holds lock_booking.

    Stripe is called inside the caller's transaction: if Stripe fails (502) or refuses (400),
    the cancellation rolls back and nothing changes, so a booking is never cancelled without
    its refund.
    """
    if booking.payment_status != PaymentStatus.PAID:
        return
    charge = succeeded_charge(booking)
    if charge is None:
        logger.error("booking %s is paid but has no successful charge on record", booking.pk)
        raise BookingError(
            "No successful payment is on record for this booking; please contact support.",
            code="payment_record_missing",
        )
    refund_charge(booking=booking, charge=charge, actor=actor)


def cancel_open_intents_after_commit(*, booking_id: int) -> None:
    transaction.on_commit(lambda: cancel_open_intents(booking_id=booking_id))


def cancel_open_intents(*, booking_id: int) -> None:
    """Cancels at Stripe the unpaid intents of a booking that was just cancelled.

    Runs after the cancellation commits, so a Stripe failure never undoes it: it is logged,
    and a payment that still succeeds later goes through the late-payment rules of the webhook.
    """
    open_charges = Payment.objects.filter(booking_id=booking_id, kind=Kind.CHARGE).exclude(
        status__in=INTENT_FINAL_STATUSES
    )
    if not open_charges.exists() or not stripe_gateway.is_configured():
        return
    for charge in open_charges:
        try:
            intent = stripe_gateway.cancel_payment_intent(charge.stripe_id)
        except DomainError:
            # Paid meanwhile, or Stripe unreachable: the webhook decides what happens next.
            logger.warning("could not cancel intent %s of booking %s", charge.stripe_id, booking_id)
            continue
        with transaction.atomic():
            booking = lock_booking(booking_id=booking_id)
            record_intent(booking, intent)
