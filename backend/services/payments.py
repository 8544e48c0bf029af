"""Payment writes: PaymentIntents and their outcome (client confirm and Stripe webhooks).

The invariants that keep money from being lost or taken twice:
- The amount charged comes from the booking, never from the client.
- A booking's payment_status only moves forward (PAYMENT_TRANSITIONS in backend/booking_rules.py),
  so a late or out-of-order event cannot undo a payment or a refund.
- A webhook event's effect commits together with its StripeEvent row. The unique event_id turns
  a redelivery, sequential or concurrent, into a no-op.
- Every Stripe call that moves money carries an idempotency key made from our own ids.
- Every change to a booking happens under lock_booking (session row, then booking row), the
  same lock order as booking_create, so payments, cancellations and new bookings serialise,
  and goes through `booking_transition`, which writes its audit event (actor: the user for a
  client confirm, none for Stripe's webhooks).
Refunds live in backend/services/refunds.py.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from backend import booking_rules, money
from backend.exceptions import BookingError, DomainError, NotFound
from backend.integrations import stripe_gateway
from backend.integrations.stripe_gateway import INTENT_FINAL_STATUSES, REFUND_FINAL_STATUSES, Intent
from backend.models import Booking, Payment, Session, StripeEvent, User
from backend.services import notifications, payouts, waitlist
from backend.services.booking_changes import booking_transition
from backend.services.locking import lock_booking
from backend.services.payment_records import record_intent, record_payment, refunded_total
from backend.services.refunds import apply_refund_state, refund_charge_later

logger = logging.getLogger(__name__)

Status = Booking.Status
PaymentStatus = Booking.PaymentStatus
Kind = Payment.Kind


@dataclass(frozen=True)
class IntentForClient:
    """What the SPA needs to show Stripe's payment form."""

    client_secret: str
    payment_intent_id: str | None
    amount: Decimal
    currency: str
    publishable_key: str
    # A booking waiting for its session's minimum saves the card instead (a SetupIntent).
    setup_intent_id: str | None = None


# --- helpers (callers hold lock_booking unless stated) ----------------------------------------


def _check_payable(booking: Booking) -> None:
    if booking.payment_status == PaymentStatus.NOT_REQUIRED:
        raise BookingError("This booking needs no payment.", code="payment_not_required")
    if booking.payment_status in (PaymentStatus.PAID, PaymentStatus.REFUNDED):
        raise BookingError("This booking has already been paid.", code="already_paid")
    if booking.status != Status.PENDING:
        raise BookingError(f"A {booking.status} booking cannot be paid.", code="not_payable")
    if booking_rules.is_stale(booking):
        raise BookingError("This booking's hold has expired; please book again.", code="expired")


def _intent_matches_booking(booking: Booking, intent: Intent) -> bool:
    expected_amount = money.to_minor_units(booking.amount, booking.currency)
    return (
        intent.metadata.get("booking_id") == str(booking.pk)
        and intent.amount == expected_amount
        and intent.currency == booking.currency.upper()
    )


def _seats_still_free(booking: Booking) -> bool:
    """Can an expired or cancelled booking be revived for a payment that arrived late?"""
    session = booking.session
    if session.status != Session.Status.PUBLISHED or session.start_time <= timezone.now():
        return False
    # The user may have booked the same session again meanwhile (one active booking each).
    if (
        session.bookings.filter(user_id=booking.user_id, status__in=Booking.ACTIVE_STATUSES)
        .exclude(pk=booking.pk)
        .exists()
    ):
        return False
    try:
        booking_rules.check_seats_available(session=session, seats=booking.seats, exclude=booking)
    except BookingError:
        return False
    return True


def _apply_success(booking: Booking, intent: Intent, charge: Payment, actor: User | None) -> str:
    if not _intent_matches_booking(booking, intent):
        # Never confirm on a payment that is not exactly this booking's price.
        logger.error(
            "payment %s does not match booking %s (%s %s, metadata %s)",
            intent.id,
            booking.pk,
            intent.amount,
            intent.currency,
            intent.metadata,
        )
        if intent.metadata.get("booking_id") == str(booking.pk):
            # Money taken for this booking at the wrong price: give it back rather than keep
            # it for a booking that stays unpaid.
            refund_charge_later(booking=booking, charge=charge, reason="refunded_mismatch")
            return "refunded_mismatch"
        return "mismatch"
    if booking.payment_status in (PaymentStatus.PAID, PaymentStatus.REFUNDED):
        # Already applied (client confirm and webhook both report it), or the refund came first.
        # A second intent succeeding cannot happen (one open intent per booking at a time); if
        # it ever does, support must see it.
        if (
            booking.payments.filter(kind=Kind.CHARGE, status="succeeded")
            .exclude(stripe_id=intent.id)
            .exists()
        ):
            logger.error("booking %s paid twice: %s also succeeded", booking.pk, intent.id)
        return "already_applied"
    if booking.payment_status == PaymentStatus.NOT_REQUIRED:
        logger.error("payment %s for booking %s that needs no payment", intent.id, booking.pk)
        return "mismatch"

    now = timezone.now()
    if booking.status == Status.CONFIRMED:
        booking_transition(booking, actor=actor, reason="paid", payment_status=PaymentStatus.PAID)
        return "paid"
    fresh_hold = booking.status == Status.PENDING and not booking_rules.is_stale(booking, now)
    if fresh_hold or _seats_still_free(booking):
        # A revived booking (expired or cancelled meanwhile) gets its seats back: the session
        # row lock held by the caller makes the seat check and the confirmation atomic.
        booking_transition(
            booking,
            actor=actor,
            reason="paid" if fresh_hold else "paid_late_revived",
            status=Status.CONFIRMED,
            payment_status=PaymentStatus.PAID,
            confirmed_at=now,
            cancelled_at=None,
        )
        waitlist.waitlist_offer_claimed(booking=booking)
        notifications.notify_booking_confirmed(booking=booking)
        return "confirmed"
    # Paid too late and its seats are gone: record the payment, then give the money back.
    booking_transition(
        booking,
        actor=actor,
        reason="paid_late_no_seats",
        status=Status.EXPIRED if booking.status == Status.PENDING else None,
        payment_status=PaymentStatus.PAID,
    )
    refund_charge_later(booking=booking, charge=charge, reason="refunded_no_seats")
    return "refunded_no_seats"


def _apply_intent(
    booking: Booking, intent: Intent, *, actor: User | None, declined: bool = False
) -> str:
    """Records what Stripe says about an intent and moves the booking. Caller holds the lock."""
    charge = record_intent(booking, intent)
    if intent.status == "succeeded":
        return _apply_success(booking, intent, charge, actor)
    if booking.payment_status == PaymentStatus.SCHEDULED:
        # An off-session charge at the decision that did not go through: its task applies it
        # (a fresh hold to pay on-session, and the e-mail), not the webhook.
        return "pending"
    if intent.status == "canceled" or declined or intent.has_payment_error:
        # The booking keeps its seats until the hold ends, so the user can try another card.
        if booking_rules.payment_move_allowed(booking, PaymentStatus.FAILED):
            booking_transition(
                booking, actor=actor, reason="payment_failed", payment_status=PaymentStatus.FAILED
            )
            return "failed"
        return "already_applied"
    return "pending"


def apply_intent(booking: Booking, intent: Intent, *, actor: User | None) -> str:
    """`_apply_intent` for the off-session charge of a session that ran
    (services/scheduled_payments.py). Caller holds lock_booking."""
    return _apply_intent(booking, intent, actor=actor)


# --- create an intent -------------------------------------------------------------------------


def _obtain_intent(booking: Booking) -> Intent:
    """The booking's open intent from Stripe, or a new one. Holds no lock (network call)."""
    open_charge = (
        booking.payments.filter(kind=Kind.CHARGE)
        .exclude(status__in=INTENT_FINAL_STATUSES)
        .order_by("-created_at", "-id")
        .first()
    )
    if open_charge is not None:
        return stripe_gateway.retrieve_payment_intent(open_charge.stripe_id)
    # One key per attempt: a retry of this attempt returns the same intent; an attempt whose
    # intent was cancelled is followed by a fresh one.
    attempt = booking.payments.filter(kind=Kind.CHARGE, status="canceled").count() + 1
    return stripe_gateway.create_payment_intent(
        amount=money.to_minor_units(booking.amount, booking.currency),
        currency=booking.currency,
        metadata={
            "booking_id": str(booking.pk),
            "user_id": str(booking.user_id),
            "session_id": str(booking.session_id),
        },
        idempotency_key=f"sm-booking-{booking.pk}-intent-{attempt}",
        # Ties the charge to the transfer of the creator's share (Connect). A creator without a
        # connected account (no Stripe at publish time, or localstripe, which refuses the
        # parameter) has no transfer to tie it to.
        transfer_group=payouts.transfer_group(booking.pk)
        if payouts.has_connected_account(creator_id=booking.session.creator_id)
        else None,
    )


def payment_create_intent(*, user: User, booking_id: int) -> IntentForClient:
    """A PaymentIntent for the user's own pending, unpaid booking within its hold.

    Stripe is called without holding any lock; the idempotency key makes concurrent or repeated
    calls converge on one intent, and recording it is an upsert on its unique Stripe id.
    """
    stripe_gateway.ensure_configured()
    booking = Booking.objects.select_related("session").filter(pk=booking_id, user=user).first()
    if booking is None:
        raise NotFound("Booking not found.")
    _check_payable(booking)
    money.to_minor_units(booking.amount, booking.currency)  # 400 before calling Stripe

    # At most two rounds: the second only when the intent found turned out cancelled.
    for _round in range(2):
        intent = _obtain_intent(booking)
        with transaction.atomic():
            booking = lock_booking(booking_id=booking.pk)
            _apply_intent(booking, intent, actor=user)
        if intent.status not in INTENT_FINAL_STATUSES:
            _check_payable(booking)
            return IntentForClient(
                client_secret=intent.client_secret or "",
                payment_intent_id=intent.id,
                amount=booking.amount,
                currency=booking.currency.upper(),
                publishable_key=stripe_gateway.publishable_key(),
            )
        if intent.status == "succeeded":
            raise BookingError("This booking has already been paid.", code="already_paid")
    raise BookingError(
        "The payment could not be started; please try again.", code="payment_not_started"
    )


# --- the client's "I paid" --------------------------------------------------------------------


@transaction.atomic
def _apply_intent_locked(*, booking_id: int, intent: Intent, actor: User) -> Booking:
    booking = lock_booking(booking_id=booking_id)
    _apply_intent(booking, intent, actor=actor)
    return booking


def payment_confirm_from_client(*, user: User, payment_intent_id: str) -> Booking:
    """Applies the intent's real status as Stripe reports it; the client's word is not used."""
    stripe_gateway.ensure_configured()
    booking_id = (
        Payment.objects.filter(kind=Kind.CHARGE, stripe_id=payment_intent_id, booking__user=user)
        .values_list("booking_id", flat=True)
        .first()
    )
    if booking_id is None:
        raise NotFound("Payment not found.")
    intent = stripe_gateway.retrieve_payment_intent(payment_intent_id)
    booking = _apply_intent_locked(booking_id=booking_id, intent=intent, actor=user)
    return booking


# --- webhooks ---------------------------------------------------------------------------------


def _booking_id_for_intent(intent_id: str | None, metadata: dict[str, Any]) -> int | None:
    if intent_id:
        booking_id = (
            Payment.objects.filter(kind=Kind.CHARGE, stripe_id=intent_id)
            .values_list("booking_id", flat=True)
            .first()
        )
        if booking_id is not None:
            return booking_id
    # Our record may be missing (the intent was created but our commit failed): the metadata
    # we sent says which booking it is for.
    raw = str((metadata or {}).get("booking_id", ""))
    return int(raw) if raw.isdigit() else None


def _on_intent_succeeded(booking: Booking, data: dict[str, Any]) -> str:
    return _apply_intent(booking, stripe_gateway.intent_from_payload(data), actor=None)


def _on_intent_failed(booking: Booking, data: dict[str, Any]) -> str:
    return _apply_intent(
        booking, stripe_gateway.intent_from_payload(data), actor=None, declined=True
    )


def _record_reported_refunds(booking: Booking, data: dict[str, Any]) -> None:
    """Stores the refunds a `charge.refunded` event reports, full or partial, idempotently.

    When the event lists its refunds, each is upserted by its Stripe id. When it does not (the
    `refunds` list is not expanded by default), the charge's `amount_refunded` is the truth:
    what it exceeds our succeeded refund rows by is recorded as one row keyed by the charge and
    that total, so a redelivery records nothing twice.
    """
    currency = str(data.get("currency") or booking.currency)
    refunds = (data.get("refunds") or {}).get("data") or []
    for refund_data in refunds:
        refund = stripe_gateway.refund_from_payload(refund_data)
        record_payment(
            booking=booking,
            kind=Kind.REFUND,
            stripe_id=refund.id,
            amount=money.from_minor_units(refund.amount, refund.currency or currency),
            currency=refund.currency or currency,
            status=refund.status,
        )
    if refunds:
        return
    if data.get("refunded"):
        # The charge is fully refunded, so the refunds we requested have gone through.
        for refund_row in booking.payments.filter(kind=Kind.REFUND).exclude(
            status__in=REFUND_FINAL_STATUSES
        ):
            refund_row.status = "succeeded"
            refund_row.save(update_fields=["status", "updated_at"])
    reported = data.get("amount_refunded")
    if isinstance(reported, int) and not isinstance(reported, bool) and reported > 0:
        reported_total = money.from_minor_units(reported, currency)
        missing = reported_total - refunded_total(booking)
        if missing > 0:
            record_payment(
                booking=booking,
                kind=Kind.REFUND,
                stripe_id=f"{data.get('id')}:refunded:{reported}",
                amount=missing,
                currency=currency,
                status="succeeded",
            )


def _on_charge_refunded(booking: Booking, data: dict[str, Any]) -> str:
    if booking.payment_status == PaymentStatus.NOT_REQUIRED:
        logger.error("charge %s refunded for free booking %s", data.get("id"), booking.pk)
        return "mismatch"
    _record_reported_refunds(booking, data)
    if booking.payment_status in (PaymentStatus.UNPAID, PaymentStatus.FAILED):
        # The refund overtook the success event: a refund proves the payment happened.
        booking_transition(
            booking, actor=None, reason="paid_seen_in_refund", payment_status=PaymentStatus.PAID
        )
    if not data.get("refunded"):
        # A partial refund (made in Stripe's dashboard): the booking stays paid and keeps its
        # seat; spend and revenue subtract what was given back.
        changed = apply_refund_state(booking, actor=None, reason="partially_refunded")
        return "partially_refunded" if changed else "already_applied"
    changed = apply_refund_state(booking, actor=None, reason="refunded")
    if booking.payment_status == PaymentStatus.PAID and booking_rules.payment_move_allowed(
        booking, PaymentStatus.REFUNDED
    ):
        # Stripe says the charge is fully refunded even if our rows add up to less.
        booking_transition(
            booking, actor=None, reason="refunded", payment_status=PaymentStatus.REFUNDED
        )
        payouts.transfer_reconcile(booking=booking)
        changed = True
    if booking.status in Booking.ACTIVE_STATUSES:
        # Refunded from Stripe's dashboard: with the money back the seat is given up.
        booking_transition(
            booking,
            actor=None,
            reason="cancelled_by_refund",
            status=Status.CANCELLED,
            cancelled_at=timezone.now(),
        )
        waitlist.waitlist_booking_ended(booking=booking)
        changed = True
    return "refunded" if changed else "already_applied"


WEBHOOK_HANDLERS = {
    "payment_intent.succeeded": _on_intent_succeeded,
    "payment_intent.payment_failed": _on_intent_failed,
    "payment_intent.canceled": _on_intent_failed,
    "charge.refunded": _on_charge_refunded,
    "charge.dispute.created": payouts.on_dispute_created,
    "charge.dispute.closed": payouts.on_dispute_closed,
}

# Events about a connected account, not a booking.
ACCOUNT_HANDLERS = {"account.updated": payouts.on_account_updated}


def payment_handle_webhook(
    *, payload: bytes, signature: str | None, secret: str | None = None
) -> str:
    """Verifies and applies one Stripe event; returns what happened (for logs and tests).

    Redelivery and concurrent delivery of one event have one effect: the StripeEvent row is
    inserted in the same transaction as the effect, and its unique event_id makes the second
    insert fail (on PostgreSQL it waits for the first transaction, then fails) so the second
    delivery changes nothing. Unknown event types are acknowledged and ignored.
    """
    event = stripe_gateway.verify_webhook(payload=payload, signature=signature, secret=secret)
    event_id, event_type = event["id"], event["type"]
    if event_type in ACCOUNT_HANDLERS:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    StripeEvent.objects.create(event_id=event_id, type=event_type)
            except IntegrityError:
                return "duplicate"
            return ACCOUNT_HANDLERS[event_type](event)
    handler = WEBHOOK_HANDLERS.get(event_type)
    if handler is None:
        return "ignored"
    if StripeEvent.objects.filter(event_id=event_id).exists():
        return "duplicate"
    data: dict[str, Any] = event["data"]["object"]
    if event_type.startswith("payment_intent."):
        intent_id = data.get("id")
    else:
        intent_id = data.get("payment_intent")
        if isinstance(intent_id, dict):
            intent_id = intent_id.get("id")
    booking_id = _booking_id_for_intent(intent_id, data.get("metadata") or {})
    if booking_id is None:
        logger.info("stripe event %s (%s) is not about a booking", event_id, event_type)
        return "ignored"

    with transaction.atomic():
        try:
            booking = lock_booking(booking_id=booking_id)
        except NotFound:
            logger.warning("stripe event %s names unknown booking %s", event_id, booking_id)
            return "ignored"
        try:
            with transaction.atomic():
                StripeEvent.objects.create(event_id=event_id, type=event_type)
        except IntegrityError:
            return "duplicate"
        try:
            outcome = handler(booking, data)
        except DomainError:
            # Rolls back the event row too, so Stripe redelivers it later.
            logger.warning("stripe event %s (%s) failed", event_id, event_type, exc_info=True)
            raise
    logger.info(
        "stripe event %s (%s) for booking %s: %s", event_id, event_type, booking_id, outcome
    )
    return outcome
