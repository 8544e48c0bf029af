"""Refunds of paid bookings, and cancelling the open checkout of an unpaid one.

A refund is never made inside the transaction that decides it (a cancellation, a late or
mismatched payment): that transaction holds the booking's row lock, and Stripe may be slow or
down. It writes an outbox row instead (`refund_charge_later`, effect key `refund:<intent id>`),
so the cancellation answers at once, and the task `payments.refund_charge` calls Stripe with no
lock held, retrying with backoff until Stripe answers, then records the refund under the lock.

Every Stripe call that moves money carries an idempotency key made from our own ids
(`sm-refund-<payment intent id>`), so a retry after an ambiguous failure (a timeout after Stripe
acted, a worker killed mid-call) returns the first refund instead of refunding again.
`payment_status` becomes `refunded` only once Stripe says the refund succeeded.
"""

import logging
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum

from backend import money
from backend.exceptions import BookingError, DomainError, ValidationFailed
from backend.integrations import stripe_gateway, stripe_setup
from backend.integrations.stripe_gateway import INTENT_FINAL_STATUSES
from backend.models import Booking, Payment, User
from backend.services.booking_changes import booking_transition
from backend.services.locking import lock_booking
from backend.services.outbox import PermanentTaskError, outbox_enqueue
from backend.services.payment_records import (
    record_intent,
    record_payment,
    refunded_total,
    succeeded_charge,
)
from backend.services.payouts import transfer_reconcile

logger = logging.getLogger(__name__)

PaymentStatus = Booking.PaymentStatus
Kind = Payment.Kind


def apply_refund_state(booking: Booking, *, actor: User | None, reason: str) -> bool:
    """Brings `refunded_amount` (and `refunded` once all is back) in line with the refund rows.

    Caller holds lock_booking. Returns whether the booking changed (one audit event if so).
    """
    refunded = refunded_total(booking)
    changes: dict[str, Any] = {}
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
    # A refund after the creator's share was transferred takes its part of the share back.
    transfer_reconcile(booking=booking)
    return True


REFUND_TASK = "payments.refund_charge"


def refund_charge_later(
    *,
    booking: Booking,
    charge: Payment,
    reason: str = "refunded",
    amount: Decimal | None = None,
) -> None:
    """Asks for the refund of `charge` once the caller's transaction commits: all of it, or
    `amount` (a cancellation policy's share, in the booking's currency).

    Caller holds lock_booking. One outbox row per charge: asking again (a replayed event, a
    second cancellation path) is a no-op, and a refund that gave up is tried again.
    """
    kwargs: dict[str, Any] = {"booking_id": booking.pk, "charge_id": charge.pk, "reason": reason}
    if amount is not None:
        # Minor units in the task's JSON: the amount Stripe is sent, exactly.
        kwargs["amount_minor"] = money.to_minor_units(amount, charge.currency)
    outbox_enqueue(
        task=REFUND_TASK,
        kwargs=kwargs,
        effect_key=f"refund:{charge.stripe_id}{refund_attempt_suffix(charge)}",
        retry_failed=True,
    )


def refund_attempt_suffix(charge: Payment) -> str:
    """ "" for the first refund attempt of a charge, "-attempt-N" after N-1 failed ones.

    A retry of the same attempt (a timeout, a killed worker, a redelivered task) keeps its keys
    and gets Stripe's first answer back; only once Stripe has answered an attempt with a final
    failed/canceled refund does the next attempt (the admin's "Refund") get new keys, so a
    failure is not replayed forever and no two refunds are ever in flight for one charge.
    """
    failed = Payment.objects.filter(
        booking_id=charge.booking_id, kind=Kind.REFUND, status__in=("failed", "canceled")
    ).count()
    return "" if failed == 0 else f"-attempt-{failed + 1}"


def refund_idempotency_key(charge: Payment) -> str:
    return f"sm-refund-{charge.stripe_id}{refund_attempt_suffix(charge)}"


def refund_charge_now(
    *, booking_id: int, charge_id: int, reason: str, amount_minor: int | None = None
) -> None:
    """The refund task's handler: refund at Stripe (no lock held), then record it (locked).

    `amount_minor`: a partial refund (a cancellation policy's share); None refunds the rest.

    Stripe down or slow (IntegrationUnavailable) raises, and the outbox retries with backoff;
    Stripe refusing the refund (400) is permanent: logged, the row marked failed, and staff can
    refund by hand. The booking's state changes through booking_transition with actor=None.
    """
    charge = Payment.objects.filter(pk=charge_id, booking_id=booking_id, kind=Kind.CHARGE).first()
    if charge is None:
        raise PermanentTaskError(f"charge {charge_id} of booking {booking_id} not found")
    already = Payment.objects.filter(
        booking_id=booking_id, kind=Kind.REFUND, status="succeeded"
    ).aggregate(total=Sum("amount"))["total"] or Decimal("0")
    if already >= charge.amount:
        logger.info("booking %s: charge %s is refunded already", booking_id, charge.stripe_id)
        return
    # A partial refund run again (a redelivery, a retry after a timeout) is not skipped here:
    # the same idempotency key makes Stripe answer with the first refund, recorded once by id.
    try:
        refund = stripe_gateway.create_refund(
            payment_intent_id=charge.stripe_id,
            metadata={"booking_id": str(booking_id)},
            idempotency_key=refund_idempotency_key(charge),
            amount=amount_minor,
        )
    except ValidationFailed as error:
        logger.error("stripe refused to refund booking %s: %s", booking_id, error)
        raise PermanentTaskError(f"Stripe refused the refund: {error}") from error
    with transaction.atomic():
        booking = lock_booking(booking_id=booking_id)
        record_payment(
            booking=booking,
            kind=Kind.REFUND,
            stripe_id=refund.id,
            amount=money.from_minor_units(refund.amount, refund.currency or charge.currency),
            currency=refund.currency or charge.currency,
            status=refund.status,
        )
        if refund.status in ("failed", "canceled"):
            logger.error("refund %s for booking %s is %s", refund.id, booking.pk, refund.status)
        apply_refund_state(booking, actor=None, reason=reason)


def refund_booking(*, booking: Booking, actor: User | None, amount: Decimal | None = None) -> None:
    """Queues the refund of a paid booking (a cancellation): all of it, or `amount` (the
    cancellation policy's share; 0 refunds nothing). Caller holds lock_booking.

    The cancellation commits and answers at once; the refund follows (refund_charge_now).
    A paid booking without a successful charge on record refuses the cancellation instead.
    """
    if booking.payment_status != PaymentStatus.PAID:
        return
    if amount is not None and amount <= 0:
        return
    if amount is not None and amount >= booking.amount:
        amount = None  # all of it: the same request (and key) as v1's full refund
    # No keys, no refund ever: refuse the cancellation (503) rather than queue one forever.
    stripe_gateway.ensure_configured()
    charge = succeeded_charge(booking)
    if charge is None:
        logger.error("booking %s is paid but has no successful charge on record", booking.pk)
        raise BookingError(
            "No successful payment is on record for this booking; please contact support.",
            code="payment_record_missing",
        )
    refund_charge_later(booking=booking, charge=charge, amount=amount)


CANCEL_INTENTS_TASK = "payments.cancel_open_intents"


def cancel_open_intents_after_commit(*, booking_id: int) -> None:
    """Queues cancel_open_intents (a task, off the request) with the booking's cancellation."""
    outbox_enqueue(
        task=CANCEL_INTENTS_TASK,
        kwargs={"booking_id": booking_id},
        effect_key=f"cancel_intents:booking:{booking_id}",
        max_attempts=1,
    )


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


# --- saved cards of sessions with a minimum (CONTRACT.md) -------------------------------------

RELEASE_CARD_TASK = "payments.release_saved_card"


def release_saved_card_after_commit(*, booking: Booking) -> None:
    """Once the caller commits, releases the card saved for this booking (detach it, or cancel
    a SetupIntent the customer never finished): it will never be charged. Caller holds the
    booking lock; a booking without a card asks for nothing."""
    if not (booking.payment_method_id or booking.setup_intent_id):
        return
    outbox_enqueue(
        task=RELEASE_CARD_TASK,
        kwargs={"booking_id": booking.pk},
        effect_key=f"release-card:booking:{booking.pk}",
    )


def release_saved_card(*, booking_id: int) -> None:
    """The task: idempotent at Stripe (detaching a detached card, cancelling a cancelled
    SetupIntent are no-ops). Reads the ids at run time: a card saved after the ask (the
    customer's browser finishing late) is released too."""
    booking = Booking.objects.filter(pk=booking_id).first()
    if booking is None:
        return
    if booking.status in Booking.ACTIVE_STATUSES and (
        booking.payment_status == PaymentStatus.SCHEDULED
    ):
        # Booked again meanwhile? No: a scheduled active booking still needs its card.
        return
    payment_method = booking.payment_method_id
    if not payment_method and booking.setup_intent_id:
        setup = stripe_setup.retrieve_setup_intent(booking.setup_intent_id)
        if setup.status != "succeeded":
            stripe_setup.cancel_setup_intent(setup.id)
            return
        payment_method = setup.payment_method or ""
    if payment_method:
        stripe_setup.detach_payment_method(payment_method)
