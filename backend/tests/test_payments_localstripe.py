"""The payment flow against localstripe, an independent Stripe fake, on 127.0.0.1.

fake_stripe.py is ours and could share our assumptions about Stripe; localstripe was written
by others against the real API. Failure injection and idempotency are tested with fake_stripe
(localstripe has neither); here the happy path must work end to end.
"""

import asyncio
import threading
from decimal import Decimal

import pytest
import stripe
from aiohttp import web

from backend.models import Payment
from backend.services.bookings import booking_cancel
from backend.tests.factories import SessionFactory
from backend.tests.payments_support import book

pytestmark = pytest.mark.django_db

API_KEY = "sk_test_localstripe"


@pytest.fixture(scope="module")
def localstripe_url():
    import localstripe.server

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(localstripe.server.app)
    started = threading.Event()
    address: list[str] = []

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        host, port = runner.addresses[0][:2]
        address.append(f"http://{host}:{port}")
        started.set()
        loop.run_forever()
        # localstripe schedules webhook deliveries (none are registered): drop them quietly.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(timeout=10), "localstripe did not start"
    yield address[0]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


@pytest.fixture
def localstripe(settings, localstripe_url):
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_localstripe"
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_TIMEOUT_SECONDS = 5
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    # The test plays Stripe.js: the customer's browser talks to Stripe directly.
    return stripe.StripeClient(API_KEY, base_addresses={"api": localstripe_url})


def customer_pays(browser: stripe.StripeClient, intent_id: str) -> None:
    method = browser.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"},
        }
    )
    browser.v1.payment_intents.update(intent_id, params={"payment_method": method.id})
    browser.v1.payment_intents.confirm(intent_id)


@pytest.mark.parametrize(
    ("price", "currency", "minor"), [("25.00", "USD", 2500), ("1500", "JPY", 1500)]
)
def test_pay_then_cancel_against_localstripe(
    localstripe, user, user_client, price, currency, minor, django_capture_on_commit_callbacks
):
    booking = book(user, SessionFactory(price=Decimal(price), currency=currency), seats=2)

    created = user_client.post("/api/payment/create-intent/", {"booking_id": booking.pk})

    assert created.status_code == 200
    intent_id = created.json()["payment_intent_id"]
    at_stripe = localstripe.v1.payment_intents.retrieve(intent_id)
    assert (at_stripe.amount, at_stripe.currency) == (minor * 2, currency.lower())
    assert at_stripe.metadata.to_dict() == {
        "booking_id": str(booking.pk),
        "user_id": str(user.pk),
        "session_id": str(booking.session_id),
    }
    assert created.json()["client_secret"] == at_stripe.client_secret
    again = user_client.post("/api/payment/create-intent/", {"booking_id": booking.pk})
    assert again.json() == created.json()

    customer_pays(localstripe, intent_id)
    confirmed = user_client.post("/api/payment/confirm/", {"payment_intent_id": intent_id})

    assert confirmed.status_code == 200
    assert (confirmed.json()["status"], confirmed.json()["payment_status"]) == ("confirmed", "paid")

    with django_capture_on_commit_callbacks(execute=True):  # the refund task, after commit
        cancelled = booking_cancel(booking_id=booking.pk, actor=user)

    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "refunded")
    refund_row = Payment.objects.get(booking=booking, kind="refund")
    refund = localstripe.v1.refunds.retrieve(refund_row.stripe_id)
    assert (refund.amount, refund.status) == (minor * 2, "succeeded")
    assert refund_row.amount == Decimal(price) * 2
