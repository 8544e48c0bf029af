"""Payment rows: one per Stripe PaymentIntent or Refund, their status only moving forward."""

from decimal import Decimal

from django.db.models import Sum

from backend import money
from backend.integrations.stripe_gateway import INTENT_FINAL_STATUSES, REFUND_FINAL_STATUSES, Intent
from backend.models import Booking, Payment

Kind = Payment.Kind


def record_payment(
    *, booking: Booking, kind: str, stripe_id: str, amount: Decimal, currency: str, status: str
) -> Payment:
    """Creates or updates the Payment row of one Stripe object; its status only moves forward."""
    final_statuses = INTENT_FINAL_STATUSES if kind == Kind.CHARGE else REFUND_FINAL_STATUSES
    payment = Payment.objects.filter(stripe_id=stripe_id).first()
    if payment is None:
        return Payment.objects.create(
            booking=booking,
            kind=kind,
            stripe_id=stripe_id,
            amount=amount,
            currency=currency.upper(),
            status=status,
        )
    if payment.status != status and payment.status not in final_statuses:
        payment.status = status
        payment.save(update_fields=["status", "updated_at"])
    return payment


def record_intent(booking: Booking, intent: Intent) -> Payment:
    return record_payment(
        booking=booking,
        kind=Kind.CHARGE,
        stripe_id=intent.id,
        amount=money.from_minor_units(intent.amount, intent.currency),
        currency=intent.currency,
        status=intent.status,
    )


def refunded_total(booking: Booking) -> Decimal:
    """What Stripe has confirmed as given back for this booking (full and partial refunds)."""
    total = booking.payments.filter(kind=Kind.REFUND, status="succeeded").aggregate(
        total=Sum("amount")
    )["total"]
    return (total or Decimal("0")).quantize(money.CENT)


def succeeded_charge(booking: Booking) -> Payment | None:
    return (
        booking.payments.filter(kind=Kind.CHARGE, status="succeeded")
        .order_by("created_at", "id")
        .first()
    )
