"""Paying for a session that runs only if enough people book (CONTRACT.md).

Before the session's `decision_at` a paid booking saves its card instead of paying: a Stripe
Customer and a SetupIntent (`usage=off_session`) per booking, both created with idempotency
keys made of the booking's id. Once Stripe says the card is saved (the client's
`payment/confirm/` with `setup_intent_id`, or the signed `setup_intent.succeeded` webhook) the
booking is `pending` + `scheduled` and holds its seat until the decision.

If the session runs, each scheduled booking is charged off-session by the outbox task
`payments.charge_scheduled` (services/minimum.py asks for it under the session lock): one
PaymentIntent with `off_session=true&confirm=true`, idempotency key
`sm-booking-<id>-offsession-<attempt>`, so a retry, a redelivered task or two workers running it
at once create one charge. Its outcome is applied under the booking lock: succeeded ->
`confirmed` + `paid`; declined or `authentication_required` -> `failed` with a normal hold of
BOOKING_HOLD_MINUTES and an e-mail with the link to pay on-session (the same PaymentIntent,
through `payment/create-intent/`); a hold that runs out expires like any other.

Views call `payment_start` and `payment_confirm`; they hand a booking that is not waiting for a
decision to the v1 payment service.
"""

import logging

from django.db import transaction
from django.utils import timezone

from backend import booking_rules, money
from backend.exceptions import BookingError, NotFound
from backend.integrations import stripe_gateway, stripe_setup
from backend.integrations.stripe_setup import SetupIntent
from backend.models import Booking, User
from backend.services import notifications, payments, payouts, refunds
from backend.services.booking_changes import booking_transition
from backend.services.locking import lock_booking
from backend.services.outbox import outbox_enqueue
from backend.services.payment_records import record_intent

logger = logging.getLogger(__name__)

Status = Booking.Status
PaymentStatus = Booking.PaymentStatus

CHARGE_TASK = "payments.charge_scheduled"
# One off-session attempt per booking: a failure becomes an on-session payment by the customer.
OFF_SESSION_ATTEMPT = 1


def _saves_card(booking: Booking) -> bool:
    """This booking pays by saving its card now (its session's decision is ahead)."""
    return booking_rules.decides_later(booking.session) and booking.payment_status in (
        PaymentStatus.UNPAID,
        PaymentStatus.FAILED,
    )


def _check_can_save(booking: Booking) -> None:
    if booking.payment_status == PaymentStatus.SCHEDULED:
        raise BookingError("This booking's card is already saved.", code="already_paid")
    if booking.status != Status.PENDING:
        raise BookingError(f"A {booking.status} booking cannot be paid.", code="not_payable")
    if booking_rules.is_stale(booking):
        raise BookingError("This booking's hold has expired; please book again.", code="expired")


def payment_start(*, user: User, booking_id: int) -> payments.IntentForClient:
    """`POST payment/create-intent/`: a SetupIntent for a booking waiting for its session's
    decision, otherwise the v1 PaymentIntent. No lock is held while Stripe is called; the
    idempotency keys make concurrent calls converge on one customer and one SetupIntent."""
    stripe_gateway.ensure_configured()
    booking = Booking.objects.select_related("session").filter(pk=booking_id, user=user).first()
    if booking is None:
        raise NotFound("Booking not found.")
    if not _saves_card(booking) and booking.payment_status != PaymentStatus.SCHEDULED:
        return payments.payment_create_intent(user=user, booking_id=booking_id)
    _check_can_save(booking)
    metadata = {
        "booking_id": str(booking.pk),
        "user_id": str(booking.user_id),
        "session_id": str(booking.session_id),
    }
    customer = booking.stripe_customer_id or stripe_setup.create_customer(
        metadata=metadata, idempotency_key=f"sm-booking-{booking.pk}-customer"
    )
    if booking.setup_intent_id:
        setup = stripe_setup.retrieve_setup_intent(booking.setup_intent_id)
    else:
        setup = stripe_setup.create_setup_intent(
            customer=customer,
            metadata=metadata,
            idempotency_key=f"sm-booking-{booking.pk}-setup",
        )
    with transaction.atomic():
        booking = lock_booking(booking_id=booking.pk)
        _check_can_save(booking)
        changes = {}
        if booking.stripe_customer_id != customer:
            changes["stripe_customer_id"] = customer
        if booking.setup_intent_id != setup.id:
            changes["setup_intent_id"] = setup.id
        if changes:
            booking_transition(booking, actor=user, reason="card_setup_started", **changes)
        if setup.status == "succeeded":
            _apply_setup(booking, setup, actor=user)
            raise BookingError("This booking's card is already saved.", code="already_paid")
    return payments.IntentForClient(
        client_secret=setup.client_secret or "",
        payment_intent_id=None,
        setup_intent_id=setup.id,
        amount=booking.amount,
        currency=booking.currency.upper(),
        publishable_key=stripe_gateway.publishable_key(),
    )


def _apply_setup(booking: Booking, setup: SetupIntent, *, actor: User | None) -> str:
    """Records a saved card on its locked booking: `scheduled`, its seat held until the
    decision. A card saved for a booking that no longer waits (cancelled, its hold run out)
    is released at once: it must never be charged."""
    if setup.status != "succeeded" or not setup.payment_method:
        return "pending"
    if setup.metadata.get("booking_id") != str(booking.pk):
        logger.error("setup intent %s is not for booking %s", setup.id, booking.pk)
        return "mismatch"
    if booking.payment_status == PaymentStatus.SCHEDULED:
        return "already_applied"
    session = booking.session
    waiting = (
        booking.status == Status.PENDING
        and not booking_rules.is_stale(booking)
        and booking_rules.payment_move_allowed(booking, PaymentStatus.SCHEDULED)
    )
    if not waiting or session.decision == booking_rules.DECISION_CALLED_OFF:
        booking_transition(
            booking,
            actor=actor,
            reason="card_saved_too_late",
            payment_method_id=setup.payment_method,
            setup_intent_id=setup.id,
        )
        refunds.release_saved_card_after_commit(booking=booking)
        return "released"
    booking_transition(
        booking,
        actor=actor,
        reason="card_saved",
        payment_status=PaymentStatus.SCHEDULED,
        payment_method_id=setup.payment_method,
        setup_intent_id=setup.id,
        stripe_customer_id=setup.customer or booking.stripe_customer_id,
        hold_expires_at=booking_rules.scheduled_hold_expires_at(session),
    )
    notifications.notify_card_saved(booking=booking)
    if session.decision == booking_rules.DECISION_RUNS:
        # Saved after the session was decided to run (the browser finished late): charged now.
        charge_scheduled_later(booking=booking)
    return "scheduled"


def payment_confirm(
    *, user: User, payment_intent_id: str | None = None, setup_intent_id: str | None = None
) -> Booking:
    """`POST payment/confirm/`: applies what Stripe reports about the intent, never the
    client's word (a PaymentIntent: the v1 service)."""
    if payment_intent_id:
        return payments.payment_confirm_from_client(user=user, payment_intent_id=payment_intent_id)
    stripe_gateway.ensure_configured()
    booking_id = (
        Booking.objects.filter(setup_intent_id=setup_intent_id, user=user)
        .values_list("pk", flat=True)
        .first()
    )
    if booking_id is None or not setup_intent_id:
        raise NotFound("Payment not found.")
    setup = stripe_setup.retrieve_setup_intent(setup_intent_id)
    with transaction.atomic():
        booking = lock_booking(booking_id=booking_id)
        _apply_setup(booking, setup, actor=user)
    return booking


def on_setup_succeeded(booking: Booking, data: dict) -> str:
    """The `setup_intent.succeeded` webhook (caller holds the booking lock)."""
    return _apply_setup(booking, stripe_setup.setup_intent_from_payload(data), actor=None)


# The payment service's webhook dispatch learns the SetupIntent event (it finds the booking by
# the metadata this module sets).
payments.WEBHOOK_HANDLERS["setup_intent.succeeded"] = on_setup_succeeded


# --- the charge at the decision -------------------------------------------------------------


def charge_scheduled_later(*, booking: Booking) -> None:
    """Asks for the off-session charge of a scheduled booking once the caller commits."""
    outbox_enqueue(
        task=CHARGE_TASK,
        kwargs={"booking_id": booking.pk},
        effect_key=f"offsession-charge:booking:{booking.pk}:{OFF_SESSION_ATTEMPT}",
    )


def charge_scheduled(*, booking_id: int) -> str:
    """The task: charges a scheduled booking's saved card once, applies the outcome under the
    lock. Holds no lock while Stripe is called; the idempotency key makes a second run (retry,
    a redelivery, a second worker) get the same PaymentIntent instead of a second charge."""
    booking = Booking.objects.select_related("session").filter(pk=booking_id).first()
    if booking is None or booking.payment_status != PaymentStatus.SCHEDULED:
        return "nothing_to_charge"
    if booking.status != Status.PENDING:
        return "nothing_to_charge"
    outcome = stripe_setup.charge_off_session(
        amount=money.to_minor_units(booking.amount, booking.currency),
        currency=booking.currency,
        customer=booking.stripe_customer_id,
        payment_method=booking.payment_method_id,
        metadata={
            "booking_id": str(booking.pk),
            "user_id": str(booking.user_id),
            "session_id": str(booking.session_id),
        },
        idempotency_key=f"sm-booking-{booking.pk}-offsession-{OFF_SESSION_ATTEMPT}",
        transfer_group=payouts.transfer_group(booking.pk)
        if payouts.has_connected_account(creator_id=booking.session.creator_id)
        else None,
    )
    with transaction.atomic():
        booking = lock_booking(booking_id=booking_id)
        if outcome.failure_code is None:
            # The v1 success path: amount checked against the booking, confirmed + paid.
            return payments.apply_intent(booking, outcome.intent, actor=None)
        record_intent(booking, outcome.intent)
        if booking.payment_status != PaymentStatus.SCHEDULED or booking.status != Status.PENDING:
            return "already_applied"
        booking_transition(
            booking,
            actor=None,
            reason=f"off_session_{outcome.failure_code}"[:64],
            payment_status=PaymentStatus.FAILED,
            hold_expires_at=booking_rules.new_hold_expires_at(timezone.now()),
        )
        notifications.notify_pay_on_session(
            booking=booking, needs_authentication=outcome.failure_code == "authentication_required"
        )
        return "failed"
