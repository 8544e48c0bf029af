"""The platform fee (issue 16): minor units, half up, the creator gets the rest, fixed when paid."""

from decimal import Decimal

import pytest

from backend import money, payout_rules
from backend.models import ConnectedAccount, Transfer
from backend.services.payouts import payouts_schedule_due
from backend.tests.payouts_support import connected, ended_paid_booking

D = Decimal


@pytest.mark.parametrize(
    ("amount", "currency", "percent", "fee"),
    [
        (D("25.00"), "USD", D("10"), D("2.50")),
        (D("12.25"), "USD", D("10"), D("1.23")),  # 1.225 -> half up
        (D("12.35"), "USD", D("10"), D("1.24")),  # 1.235 -> half up (not to even)
        (D("0.50"), "USD", D("10"), D("0.05")),
        (D("0.55"), "USD", D("10"), D("0.06")),  # 5.5 cents
        (D("33.33"), "EUR", D("10"), D("3.33")),
        (D("19.99"), "EUR", D("7.5"), D("1.50")),  # 1.49925
        (D("1500"), "JPY", D("10"), D("150")),
        (D("1235"), "JPY", D("10"), D("124")),  # 123.5 yen -> 124, never fractions of a yen
        (D("1234"), "JPY", D("10"), D("123")),
        (D("50"), "JPY", D("15"), D("8")),  # 7.5 yen
        (D("99.99"), "USD", D("0"), D("0.00")),
        (D("99.99"), "USD", D("100"), D("99.99")),
    ],
)
def test_fee_in_minor_units_rounded_half_up(amount, currency, percent, fee):
    computed = payout_rules.fee_for(amount=amount, currency=currency, percent=percent)
    assert computed == fee
    assert money.is_whole_in(computed, currency)
    whole = payout_rules.split(amount=amount, fee=computed, refunded=D("0"), currency=currency)
    assert (whole.fee, whole.share, whole.total) == (fee, amount - fee, amount)


@pytest.mark.parametrize("currency", ["USD", "EUR", "JPY"])
@pytest.mark.parametrize("percent", [D("0"), D("7.5"), D("10"), D("12.34"), D("33.33")])
def test_share_plus_fee_is_the_charge_for_every_amount_and_refund(currency, percent):
    unit = D(1).scaleb(-money.minor_unit_exponent(currency))
    checked = 0
    for minor in [*range(50, 400, 7), 9999, 123457]:
        amount = (minor * unit).quantize(money.CENT)
        fee = payout_rules.fee_for(amount=amount, currency=currency, percent=percent)
        assert D(0) <= fee <= amount
        for refunded_minor in (0, 1, minor // 3, minor // 2, minor - 1, minor):
            refunded = (refunded_minor * unit).quantize(money.CENT)
            part = payout_rules.split(amount=amount, fee=fee, refunded=refunded, currency=currency)
            assert part.fee + part.share == amount - refunded
            assert part.fee >= 0 and part.share >= 0
            assert money.is_whole_in(part.fee, currency)
            checked += 1
    assert checked == 6 * (len(range(50, 400, 7)) + 2)


def test_a_refund_shrinks_the_fee_in_proportion():
    part = payout_rules.split(
        amount=D("100.00"), fee=D("10.00"), refunded=D("25.00"), currency="USD"
    )
    assert (part.fee, part.share) == (D("7.50"), D("67.50"))
    gone = payout_rules.split(
        amount=D("100.00"), fee=D("10.00"), refunded=D("100.00"), currency="USD"
    )
    assert (gone.fee, gone.share) == (D("0.00"), D("0.00"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("price", "currency", "fee", "share_minor"),
    [
        (D("19.99"), "EUR", D("2.00"), 1799),  # 1.999 -> 2.00
        (D("1235"), "JPY", D("124"), 1111),  # zero-decimal: sent as yen
    ],
)
def test_the_transfer_is_the_charge_minus_the_fee(
    fake_stripe,
    user,
    creator,
    price,
    currency,
    fee,
    share_minor,
    django_capture_on_commit_callbacks,
):
    connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(
        fake_stripe, user, creator, price=price, currency=currency
    )
    assert booking.platform_fee == fee

    with django_capture_on_commit_callbacks(execute=True):
        payouts_schedule_due()

    (sent,) = fake_stripe.state.transfers.values()
    charged = fake_stripe.intent(intent_id)["amount"]
    assert (sent["amount"], sent["currency"]) == (share_minor, currency.lower())
    assert sent["amount"] + money.to_minor_units(fee, currency) == charged


@pytest.mark.django_db
def test_a_creators_own_rate_is_fixed_on_the_booking_when_paid(
    fake_stripe, settings, user, creator, django_capture_on_commit_callbacks
):
    account = connected(creator, fake_stripe, fee_percent=D("15"))
    booking, _ = ended_paid_booking(fake_stripe, user, creator, price=D("40.00"))
    assert booking.platform_fee == D("6.00")

    # Staff change the creator's rate, and the site's default, after the payment.
    ConnectedAccount.objects.filter(pk=account.pk).update(fee_percent=D("50"))
    settings.PLATFORM_FEE_PERCENT = D("30")
    with django_capture_on_commit_callbacks(execute=True):
        payouts_schedule_due()

    transfer = Transfer.objects.get(booking=booking)
    assert (transfer.fee, transfer.amount) == (D("6.00"), D("34.00"))
    (sent,) = fake_stripe.state.transfers.values()
    assert sent["amount"] == 3400


@pytest.mark.django_db
def test_the_default_rate_comes_from_the_setting(fake_stripe, settings, user, creator):
    settings.PLATFORM_FEE_PERCENT = D("12.5")
    booking, _ = ended_paid_booking(fake_stripe, user, creator, price=D("10.00"))
    assert booking.platform_fee == D("1.25")
