"""Session prices that Stripe could never charge are refused when the session is written.

Stripe refuses a PaymentIntent below the currency's minimum charge and above eight digits in
minor units; a booking is charged price x seats (up to MAX_SEATS_PER_BOOKING) at once.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.booking_rules import MAX_SEATS_PER_BOOKING
from backend.models import Session
from backend.money import MINIMUM_CHARGE, SUPPORTED_CURRENCIES, maximum_charge
from backend.tests.factories import SessionFactory

pytestmark = pytest.mark.django_db


def payload(**overrides) -> dict:
    return {
        "title": "Pricing clinic",
        "price": "25.00",
        "currency": "USD",
        "duration_minutes": 60,
        "start_time": (timezone.now() + timedelta(days=3)).isoformat(),
        "capacity": 10,
        "is_online": True,
        **overrides,
    }


def test_every_supported_currency_has_a_minimum_charge():
    assert set(MINIMUM_CHARGE) == set(SUPPORTED_CURRENCIES)


@pytest.mark.parametrize(
    ("price", "currency"),
    [("0.10", "USD"), ("0.49", "EUR"), ("0.29", "GBP"), ("49", "JPY"), ("2.99", "SEK")],
)
def test_price_below_the_minimum_charge_is_400_and_creates_nothing(creator_client, price, currency):
    response = creator_client.post("/api/sessions/", payload(price=price, currency=currency))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "price_below_minimum"
    assert f"({MINIMUM_CHARGE[currency]} {currency})" in body["detail"]
    assert Session.objects.count() == 0


@pytest.mark.parametrize(
    ("price", "currency"),
    [("0.50", "USD"), ("0.50", "EUR"), ("0.30", "GBP"), ("50", "JPY"), ("0", "USD"), ("0", "JPY")],
)
def test_the_minimum_itself_and_free_are_accepted(creator_client, price, currency):
    response = creator_client.post("/api/sessions/", payload(price=price, currency=currency))
    assert response.status_code == 201, response.content
    assert Decimal(response.json()["price"]) == Decimal(price)


@pytest.mark.parametrize(
    ("price", "currency"), [("9999999.99", "USD"), ("100000.00", "EUR"), ("10000000", "JPY")]
)
def test_a_price_whose_largest_booking_exceeds_stripes_maximum_is_400(
    creator_client, price, currency
):
    # 9999999.99 USD x 10 seats is 99,999,999.90 USD: far over Stripe's eight digits.
    response = creator_client.post("/api/sessions/", payload(price=price, currency=currency))
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "amount_too_large"
    assert Session.objects.count() == 0


@pytest.mark.parametrize(
    ("largest", "over", "currency"),
    [("99999.99", "100000.00", "USD"), ("9999999", "10000000", "JPY")],
)
def test_the_largest_chargeable_price_is_accepted_and_one_unit_more_is_not(
    creator_client, largest, over, currency
):
    assert Decimal(largest) * MAX_SEATS_PER_BOOKING <= maximum_charge(currency)
    accepted = creator_client.post("/api/sessions/", payload(price=largest, currency=currency))
    assert accepted.status_code == 201, accepted.content
    refused = creator_client.post("/api/sessions/", payload(price=over, currency=currency))
    assert refused.status_code == 400
    assert refused.json()["code"] == "amount_too_large"
    assert f"at most {largest} {currency}" in refused.json()["detail"]
    assert Session.objects.count() == 1


def test_update_to_an_unchargeable_price_is_400_and_changes_nothing(creator, creator_client):
    session = SessionFactory(creator=creator, price=Decimal("20.00"), currency="USD")
    response = creator_client.patch(f"/api/sessions/{session.pk}/", {"price": "0.25"})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "price_below_minimum"
    session.refresh_from_db()
    assert session.price == Decimal("20.00")


def test_switching_currency_checks_the_existing_price_against_the_new_minimum(
    creator, creator_client
):
    # 40 is fine in USD but under the 50 JPY minimum.
    session = SessionFactory(creator=creator, price=Decimal("40.00"), currency="USD")
    response = creator_client.patch(f"/api/sessions/{session.pk}/", {"currency": "JPY"})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "price_below_minimum"
    session.refresh_from_db()
    assert session.currency == "USD"
