"""Creators get paid: Connect onboarding, transfers of the creator's share, their reversals,
and disputes (CONTRACT.md, "Creators get paid (Stripe Connect)").

Money flow ("separate charges and transfers"): the attendee pays the platform (a PaymentIntent
with `transfer_group` booking-<id>), and once the session has ended PAYOUT_DELAY_HOURS ago
the periodic job `payouts_schedule_due` gives each booking that is still confirmed and paid
one Transfer row and, in the same transaction, one outbox message. The task `transfer_send`
then calls Stripe with no lock held and the idempotency key `sm-transfer-booking-<id>`:

- two workers (or beat processes) running the job at once: each booking is locked and
  re-checked, and the unique Transfer.booking lets only one row exist; the effect key lets only
  one message exist;
- a task run twice (a retry after a timeout, a redelivery): the same key returns Stripe's first
  transfer, and it is recorded once (the row's stripe id is unique).

Refunds recorded after the transfer, and a lost dispute, reverse it in proportion
(`transfer_reconcile`, keyed by the cumulative amount asked back, so asking twice for the same
state is one reversal). A dispute holds a transfer not yet sent; winning it releases the
booking to the next run of the job.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from backend import booking_rules, money, payout_rules
from backend.exceptions import Conflict, NotFound, ValidationFailed
from backend.integrations import stripe_connect, stripe_gateway
from backend.models import Booking, ConnectedAccount, Transfer, TransferReversal, User
from backend.models.catalog import session_end_time
from backend.services import notifications
from backend.services.booking_changes import booking_transition
from backend.services.locking import lock_booking
from backend.services.outbox import PermanentTaskError, outbox_enqueue
from backend.services.payment_records import refunded_total, succeeded_charge

logger = logging.getLogger(__name__)

PaymentStatus = Booking.PaymentStatus
TransferStatus = Transfer.Status

TRANSFER_TASK = "payments.transfer_send"
REVERSAL_TASK = "payments.transfer_reverse"


def transfer_group(booking_id: int) -> str:
    return f"booking-{booking_id}"


def has_connected_account(*, creator_id: int) -> bool:
    return ConnectedAccount.objects.filter(user_id=creator_id).exists()


# --- onboarding and account state ----------------------------------------------------------------


@dataclass(frozen=True)
class OnboardingLink:
    url: str
    expires_at: datetime


def _record_new_account(*, creator: User, account: stripe_connect.Account) -> ConnectedAccount:
    """Stores the account Stripe made; a concurrent first call may have stored it already."""
    try:
        with transaction.atomic():
            return ConnectedAccount.objects.create(
                user=creator,
                stripe_account_id=account.id,
                charges_enabled=account.charges_enabled,
                payouts_enabled=account.payouts_enabled,
                details_submitted=account.details_submitted,
                requirements_due=list(account.requirements_due),
            )
    except IntegrityError:
        existing = ConnectedAccount.objects.get(user=creator)
        if existing.stripe_account_id != account.id:
            # Cannot happen with one idempotency key per creator; support must see it if it does.
            logger.error(
                "creator %s: Stripe account %s made but %s is on record",
                creator.pk,
                account.id,
                existing.stripe_account_id,
            )
        return existing


def payouts_onboarding(*, creator: User, return_url: str, refresh_url: str) -> OnboardingLink:
    """The creator's Account Link, creating their Express account on the first call.

    Concurrent first calls converge on one account: the creation carries the idempotency key
    `sm-connect-account-user-<id>`, so Stripe answers every one of them with the same account,
    and the unique ConnectedAccount.user keeps one row. No lock is held around the calls.
    """
    stripe_gateway.ensure_configured()
    for url in (return_url, refresh_url):
        if not payout_rules.is_allowed_redirect(url):
            raise ValidationFailed(
                "return_url and refresh_url must be on one of the app's origins "
                "(CORS_ALLOWED_ORIGINS).",
                code="invalid_redirect_url",
            )
    account = ConnectedAccount.objects.filter(user=creator).first()
    if account is None:
        created = stripe_connect.create_express_account(
            email=creator.email,
            metadata={"user_id": str(creator.pk)},
            idempotency_key=f"sm-connect-account-user-{creator.pk}",
        )
        account = _record_new_account(creator=creator, account=created)
    link = stripe_connect.create_account_link(
        account_id=account.stripe_account_id, return_url=return_url, refresh_url=refresh_url
    )
    return OnboardingLink(url=link.url, expires_at=link.expires_at)


def account_apply_state(
    *, account: stripe_connect.Account, as_of: datetime | None = None
) -> ConnectedAccount | None:
    """Stores what Stripe says about a connected account (account.updated). An event older
    than the state on record changes nothing (events arrive in any order). None: not ours."""
    with transaction.atomic():
        row = (
            ConnectedAccount.objects.select_for_update()
            .filter(stripe_account_id=account.id)
            .first()
        )
        if row is None:
            return None
        if (
            as_of is not None
            and row.stripe_updated_at is not None
            and as_of < row.stripe_updated_at
        ):
            logger.info("account %s: ignoring an older account.updated", account.id)
            return row
        row.charges_enabled = account.charges_enabled
        row.payouts_enabled = account.payouts_enabled
        row.details_submitted = account.details_submitted
        row.requirements_due = list(account.requirements_due)
        row.stripe_updated_at = as_of or row.stripe_updated_at
        row.save()
        return row


def account_refresh(*, creator: User) -> ConnectedAccount | None:
    """Reads the creator's account from Stripe and stores its state (no webhook needed)."""
    row = ConnectedAccount.objects.filter(user=creator).first()
    if row is None:
        return None
    return account_apply_state(account=stripe_connect.retrieve_account(row.stripe_account_id))


def on_account_updated(event: dict[str, Any]) -> str:
    """The webhook's account.updated (the caller records the event in this transaction)."""
    account = stripe_connect.account_from_payload(event["data"]["object"])
    created = event.get("created")
    as_of = datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else None
    row = account_apply_state(account=account, as_of=as_of)
    return "ignored" if row is None else "account_updated"


def check_can_publish(*, price: Decimal, creator_id: int) -> None:
    """With Stripe configured, a paid session is published only once its creator can be paid
    (their account has charges_enabled). Free sessions, and a site without Stripe, need none."""
    if price <= 0 or not stripe_gateway.is_configured():
        return
    if not ConnectedAccount.objects.filter(user_id=creator_id, charges_enabled=True).exists():
        raise Conflict(
            "Set up payouts first (POST /api/payouts/onboarding/): a paid session can be "
            "published once your Stripe account can accept charges.",
            code="payouts_not_ready",
        )


# --- the split of one booking --------------------------------------------------------------------


def booking_split(booking: Booking) -> payout_rules.Split:
    """The fee and the creator's share of a booking, net of its refunds so far."""
    fee = booking.platform_fee
    if fee is None:
        # Paid before fees were recorded: today's rate for its creator.
        fee = payout_rules.fee_for(
            amount=booking.amount,
            currency=booking.currency,
            percent=payout_rules.fee_percent_for(creator_id=booking.session.creator_id),
        )
    return payout_rules.split(
        amount=booking.amount, fee=fee, refunded=refunded_total(booking), currency=booking.currency
    )


# --- scheduling and sending transfers ------------------------------------------------------------


def due_bookings(*, now: datetime | None = None):
    """Bookings whose creator's share is due: confirmed and paid, the session ended
    PAYOUT_DELAY_HOURS ago, no transfer yet, and a connected account that can receive it."""
    now = now or timezone.now()
    ended_before = now - timedelta(hours=settings.PAYOUT_DELAY_HOURS)
    has_account = ConnectedAccount.objects.filter(
        user_id=OuterRef("session__creator_id"), charges_enabled=True
    )
    return (
        Booking.objects.alias(session_end=session_end_time("session__"))
        .filter(
            status=Booking.Status.CONFIRMED,
            payment_status=PaymentStatus.PAID,
            session_end__lte=ended_before,
            transfer__isnull=True,
        )
        .filter(Exists(has_account))
        .order_by("session_id", "id")
    )


def _eligible(booking: Booking, now: datetime) -> bool:
    end = booking.session.start_time + timedelta(minutes=booking.session.duration_minutes)
    return (
        booking.status == Booking.Status.CONFIRMED
        and booking.payment_status == PaymentStatus.PAID
        and end <= now - timedelta(hours=settings.PAYOUT_DELAY_HOURS)
    )


def _enqueue_send(transfer: Transfer, *, retry_failed: bool = False) -> None:
    outbox_enqueue(
        task=TRANSFER_TASK,
        kwargs={"transfer_id": transfer.pk},
        effect_key=f"transfer:booking:{transfer.booking_id}",
        retry_failed=retry_failed,
    )


def transfer_schedule(*, booking_id: int, now: datetime | None = None) -> Transfer | None:
    """Gives one due booking its Transfer row and the message that sends it (or nothing)."""
    now = now or timezone.now()
    with transaction.atomic():
        booking = lock_booking(booking_id=booking_id)
        # Under the lock: a second worker waits here, then sees the first one's transfer.
        if Transfer.objects.filter(booking_id=booking.pk).exists() or not _eligible(booking, now):
            return None
        account = ConnectedAccount.objects.filter(
            user_id=booking.session.creator_id, charges_enabled=True
        ).first()
        if account is None:
            return None
        split = booking_split(booking)
        if split.share <= 0:
            return None
        transfer = Transfer.objects.create(
            booking=booking,
            creator_id=booking.session.creator_id,
            account=account,
            amount=split.share,
            fee=split.fee,
            currency=booking.currency.upper(),
        )
        _enqueue_send(transfer)
        return transfer


def payouts_schedule_due(*, now: datetime | None = None) -> int:
    """The periodic job: schedules the transfer of every booking due. Returns how many."""
    scheduled = 0
    for booking_id in due_bookings(now=now).values_list("id", flat=True):
        if transfer_schedule(booking_id=booking_id, now=now) is not None:
            scheduled += 1
    return scheduled


def _lock_transfer(booking_id: int) -> tuple[Booking, Transfer]:
    booking = lock_booking(booking_id=booking_id)
    return booking, Transfer.objects.select_for_update().get(booking_id=booking_id)


def transfer_send(*, transfer_id: int) -> None:
    """The task: transfer a pending row's share at Stripe (no lock held), then record it.

    Re-checked before the call: a booking refunded, cancelled or disputed since it was
    scheduled is not transferred (a dispute holds it, anything else cancels it). A refund that
    lands between this check and Stripe's answer is reconciled right after the recording.
    """
    transfer = Transfer.objects.select_related("account", "booking").filter(pk=transfer_id).first()
    if transfer is None:
        raise PermanentTaskError(f"transfer {transfer_id} not found")
    if transfer.status != TransferStatus.PENDING:
        logger.info("transfer %s is %s: nothing to send", transfer.pk, transfer.status)
        return
    booking = transfer.booking
    if booking.payment_status != PaymentStatus.PAID or booking.status != Booking.Status.CONFIRMED:
        with transaction.atomic():
            booking, transfer = _lock_transfer(booking.pk)
            if transfer.status == TransferStatus.PENDING:
                held = booking.payment_status == PaymentStatus.DISPUTED
                transfer.status = TransferStatus.HELD if held else TransferStatus.CANCELLED
                transfer.save(update_fields=["status", "updated_at"])
        return
    charge = succeeded_charge(booking)
    if charge is None:
        raise PermanentTaskError(f"booking {booking.pk} has no successful charge")
    intent = stripe_gateway.retrieve_payment_intent(charge.stripe_id)
    try:
        result = stripe_connect.create_transfer(
            amount=money.to_minor_units(transfer.amount, transfer.currency),
            currency=transfer.currency,
            destination=transfer.account.stripe_account_id,
            source_transaction=intent.latest_charge,
            transfer_group=transfer_group(booking.pk),
            metadata={"booking_id": str(booking.pk), "transfer_id": str(transfer.pk)},
            idempotency_key=f"sm-transfer-booking-{booking.pk}",
        )
    except ValidationFailed as error:
        logger.error("stripe refused the transfer of booking %s: %s", booking.pk, error)
        Transfer.objects.filter(pk=transfer.pk, status=TransferStatus.PENDING).update(
            status=TransferStatus.FAILED, last_error=str(error)[:2000]
        )
        raise PermanentTaskError(f"Stripe refused the transfer: {error}") from error
    with transaction.atomic():
        booking, transfer = _lock_transfer(booking.pk)
        if transfer.stripe_transfer_id is None:
            transfer.stripe_transfer_id = result.id
            transfer.status = TransferStatus.PAID
            transfer.transferred_at = timezone.now()
            transfer.last_error = ""
            transfer.save()
        transfer_reconcile(booking=booking, transfer=transfer)


def transfer_retry(*, transfer_id: int) -> Transfer:
    """Staff's "retry transfer": a transfer Stripe refused (`failed`) is queued again, with the
    same idempotency key, so a transfer Stripe did make is never made twice. A cancelled one
    stays cancelled: its booking was refunded or cancelled."""
    with transaction.atomic():
        booking_id = Transfer.objects.filter(pk=transfer_id).values_list("booking_id", flat=True)
        if not booking_id:
            raise NotFound("Transfer not found.")
        _booking, transfer = _lock_transfer(booking_id[0])
        if transfer.status != TransferStatus.FAILED:
            raise Conflict(
                f"A {transfer.status} transfer cannot be retried.", code="transfer_not_retryable"
            )
        transfer.status = TransferStatus.PENDING
        transfer.save(update_fields=["status", "updated_at"])
        _enqueue_send(transfer, retry_failed=True)
        return transfer


# --- reversals -----------------------------------------------------------------------------------


def _reversal_target(booking: Booking, transfer: Transfer) -> Decimal:
    """How much of the transfer should have been given back by now."""
    if booking.payment_status == PaymentStatus.REFUNDED:
        return transfer.amount
    share_now = booking_split(booking).share
    return max(transfer.amount - share_now, Decimal("0"))


def transfer_reconcile(
    *, booking: Booking, transfer: Transfer | None = None, reason: str = "refund"
) -> None:
    """After a refund or a lost dispute: asks Stripe to reverse what the creator should no
    longer keep. Caller holds lock_booking. `reversed_amount` is what has been asked for; each
    ask is keyed by that cumulative total, so the same state never asks twice."""
    if transfer is None:
        transfer = Transfer.objects.select_for_update().filter(booking_id=booking.pk).first()
    # A transfer not sent yet needs nothing: transfer_send sees the new state and holds it
    # or cancels it.
    if transfer is None or transfer.status != TransferStatus.PAID:
        return
    target = _reversal_target(booking, transfer)
    missing = target - transfer.reversed_amount
    if missing <= 0:
        return
    transfer.reversed_amount = target
    transfer.save(update_fields=["reversed_amount", "updated_at"])
    target_minor = money.to_minor_units(target, transfer.currency)
    outbox_enqueue(
        task=REVERSAL_TASK,
        kwargs={
            "transfer_id": transfer.pk,
            "amount": str(missing),
            "cumulative_minor": target_minor,
            "reason": reason,
        },
        effect_key=f"transfer_reversal:{transfer.pk}:{target_minor}",
    )


def transfer_reverse(*, transfer_id: int, amount: str, cumulative_minor: int, reason: str) -> None:
    """The task: reverse `amount` of a sent transfer at Stripe (no lock held), then record it."""
    transfer = Transfer.objects.filter(pk=transfer_id).first()
    if transfer is None or not transfer.stripe_transfer_id:
        raise PermanentTaskError(f"transfer {transfer_id} was never sent")
    try:
        reversal = stripe_connect.create_transfer_reversal(
            transfer_id=transfer.stripe_transfer_id,
            amount=money.to_minor_units(Decimal(amount), transfer.currency),
            metadata={"booking_id": str(transfer.booking_id), "reason": reason},
            idempotency_key=f"sm-transfer-{transfer.pk}-reversal-{cumulative_minor}",
        )
    except ValidationFailed as error:
        logger.error("stripe refused to reverse transfer %s: %s", transfer.pk, error)
        raise PermanentTaskError(f"Stripe refused the reversal: {error}") from error
    with transaction.atomic():
        lock_booking(booking_id=transfer.booking_id)
        TransferReversal.objects.get_or_create(
            stripe_id=reversal.id,
            defaults={
                "transfer": transfer,
                "amount": money.from_minor_units(reversal.amount, transfer.currency),
                "reason": reason,
            },
        )


# --- disputes ------------------------------------------------------------------------------------


def on_dispute_created(booking: Booking, data: dict[str, Any]) -> str:
    """charge.dispute.created: the booking is `disputed`, a transfer not yet sent is held, and
    the creator and staff are told. Caller holds lock_booking (the webhook)."""
    dispute = stripe_connect.dispute_from_payload(data)
    if not booking_rules.payment_move_allowed(booking, PaymentStatus.DISPUTED):
        logger.warning(
            "dispute %s on booking %s (%s)", dispute.id, booking.pk, booking.payment_status
        )
        return "ignored"
    booking_transition(
        booking, actor=None, reason="disputed", payment_status=PaymentStatus.DISPUTED
    )
    Transfer.objects.filter(booking_id=booking.pk, status=TransferStatus.PENDING).update(
        status=TransferStatus.HELD
    )
    notifications.notify_dispute(booking=booking, dispute_id=dispute.id, opened=True)
    return "disputed"


def _release_held(booking: Booking) -> None:
    """A won dispute: the held transfer (if the job had scheduled one) is sent after all, with
    its share recomputed and the same Stripe idempotency key."""
    transfer = (
        Transfer.objects.select_for_update()
        .filter(booking_id=booking.pk, status=TransferStatus.HELD)
        .first()
    )
    if transfer is None:
        return  # not scheduled yet: the job will, the booking being paid again
    split = booking_split(booking)
    transfer.amount, transfer.fee = split.share, split.fee
    transfer.status = TransferStatus.PENDING
    transfer.save(update_fields=["amount", "fee", "status", "updated_at"])
    outbox_enqueue(
        task=TRANSFER_TASK,
        kwargs={"transfer_id": transfer.pk},
        effect_key=f"transfer:booking:{booking.pk}:released",
    )


def on_dispute_closed(booking: Booking, data: dict[str, Any]) -> str:
    """charge.dispute.closed: won -> `paid` again (a held transfer goes back to the job);
    lost -> `refunded`, and a transfer already made is reversed in full."""
    dispute = stripe_connect.dispute_from_payload(data)
    if booking.payment_status != PaymentStatus.DISPUTED:
        return "already_applied"
    if dispute.status == "won":
        booking_transition(
            booking, actor=None, reason="dispute_won", payment_status=PaymentStatus.PAID
        )
        _release_held(booking)
        outcome = "dispute_won"
    elif dispute.status == "lost":
        booking_transition(
            booking, actor=None, reason="dispute_lost", payment_status=PaymentStatus.REFUNDED
        )
        Transfer.objects.filter(booking_id=booking.pk, status=TransferStatus.HELD).update(
            status=TransferStatus.CANCELLED
        )
        transfer_reconcile(booking=booking, reason="dispute_lost")
        outcome = "dispute_lost"
    else:
        return "ignored"
    notifications.notify_dispute(
        booking=booking, dispute_id=dispute.id, opened=False, outcome=outcome
    )
    return outcome
