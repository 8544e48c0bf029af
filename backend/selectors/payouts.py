"""Payout reads: the creator's connected account, transfers and earnings (fixed queries)."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import DecimalField, OuterRef, QuerySet, Subquery, Sum

from backend import payout_rules
from backend.models import Booking, ConnectedAccount, Payment, Transfer, User

PaymentStatus = Booking.PaymentStatus
MONEY: DecimalField = DecimalField(max_digits=12, decimal_places=2)
ZERO = Decimal("0.00")


def account_for(*, creator: User) -> ConnectedAccount | None:
    return ConnectedAccount.objects.filter(user=creator).first()


def transfers_for(*, creator: User) -> QuerySet[Transfer]:
    return Transfer.objects.filter(creator=creator).order_by("-created_at", "-id")


def _as_list(totals: dict[str, Decimal]) -> list[dict]:
    return [{"currency": code, "amount": totals[code]} for code in sorted(totals)]


def earnings_for(*, bookings: QuerySet[Booking], creator: User) -> dict:
    """`{pending, transferred, platform_fees}`, each `[{currency, amount}]`, net of refunds.

    - transferred: what the transfers sent, minus what was taken back since;
    - pending: the creator's share of paid bookings not transferred yet (disputed ones are
      left out until the dispute is won);
    - platform_fees: the fee kept on every paid (or partly refunded) booking.
    Two queries (three with bookings paid before fees were recorded): the bookings' money
    columns, and the transfers. The split is the one rule of backend/payout_rules.py, in
    Python, so these figures match the transfers to the unit.
    """
    default_percent: Decimal | None = None
    pending: dict[str, Decimal] = defaultdict(Decimal)
    transferred: dict[str, Decimal] = defaultdict(Decimal)
    fees: dict[str, Decimal] = defaultdict(Decimal)
    sent = {
        row["booking_id"]: row
        for row in Transfer.objects.filter(creator=creator)
        .exclude(status=Transfer.Status.CANCELLED)
        .values("booking_id", "amount", "fee", "reversed_amount", "status", "currency")
    }
    # Refunds as the revenue figures count them: the succeeded refund rows.
    refunded = (
        Payment.objects.filter(booking=OuterRef("pk"), kind=Payment.Kind.REFUND, status="succeeded")
        .order_by()
        .values("booking")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    rows = (
        bookings.filter(
            payment_status__in=[PaymentStatus.PAID, PaymentStatus.REFUNDED, PaymentStatus.DISPUTED]
        )
        .annotate(refunded=Subquery(refunded, output_field=MONEY))
        .values("id", "amount", "currency", "platform_fee", "refunded", "payment_status")
    )
    for row in rows:
        code = row["currency"].upper()
        # Every currency with money in it is listed in all three, 0.00 where nothing is.
        for totals in (pending, transferred, fees):
            totals.setdefault(code, ZERO)
        transfer = sent.get(row["id"])
        if transfer is not None and transfer["status"] == Transfer.Status.PAID:
            transferred[code] += transfer["amount"] - transfer["reversed_amount"]
        if row["payment_status"] != PaymentStatus.PAID:
            # Refunded (in full, or a lost dispute): nothing is kept; disputed: nothing yet.
            continue
        fee = row["platform_fee"]
        if fee is None:
            # Paid before fees were recorded: today's rate (one more query, the first time).
            if default_percent is None:
                default_percent = payout_rules.fee_percent_for(creator_id=creator.pk)
            fee = payout_rules.fee_for(amount=row["amount"], currency=code, percent=default_percent)
        split = payout_rules.split(
            amount=row["amount"], fee=fee, refunded=row["refunded"] or ZERO, currency=code
        )
        fees[code] += split.fee
        if transfer is None or transfer["status"] != Transfer.Status.PAID:
            pending[code] += split.share
    for totals in (pending, transferred, fees):
        for code in list(totals):
            totals[code] = totals[code].quantize(Decimal("0.01"))
    return {
        "earnings": {"pending": _as_list(pending), "transferred": _as_list(transferred)},
        "platform_fees": _as_list(fees),
    }
