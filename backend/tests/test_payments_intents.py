"""POST /api/payment/create-intent/ and /api/payment/confirm/ against the Stripe stand-in."""

from decimal import Decimal

import pytest

from backend.exceptions import ValidationFailed
from backend.models import Booking, Payment
from backend.money import from_minor_units, to_minor_units
from backend.services.bookings import booking_create
from backend.tests.factories import SessionFactory, UserFactory
from backend.tests.payments_support import book, booking_state, start_payment
from backend.tests.support import auth_client, expire_hold, run_concurrently

pytestmark = pytest.mark.django_db

CREATE_URL = "/api/payment/create-intent/"
CONFIRM_URL = "/api/payment/confirm/"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("25.00"), "USD", 2500),
        (Decimal("0.50"), "eur", 50),
        (Decimal("1500.00"), "JPY", 1500),
        (Decimal("1500"), "krw", 1500),
        (Decimal("12.34"), "KWD", 12340),
    ],
)
def test_minor_units_round_trip(amount, currency, minor):
    assert to_minor_units(amount, currency) == minor
    assert from_minor_units(minor, currency) == amount.quantize(Decimal("0.01"))


def test_minor_units_refuse_fractions_a_currency_cannot_hold():
    with pytest.raises(ValidationFailed) as error:
        to_minor_units(Decimal("1500.50"), "JPY")
    assert error.value.message == "1500.50 JPY cannot be charged: JPY has 0 decimal places."


def test_create_intent_sends_minor_units_and_metadata(fake_stripe, user, user_client):
    session = SessionFactory(price=Decimal("25.00"), currency="USD")
    booking = book(user, session, seats=2)

    response = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 200
    body = response.json()
    (sent,) = fake_stripe.requests_to("POST", "/v1/payment_intents")
    assert sent.params == {
        "amount": "5000",
        "currency": "usd",
        "metadata[booking_id]": str(booking.pk),
        "metadata[user_id]": str(user.pk),
        "metadata[session_id]": str(session.pk),
    }
    assert sent.idempotency_key == f"sm-booking-{booking.pk}-intent-1"
    intent = fake_stripe.intent(body["payment_intent_id"])
    assert body == {
        "client_secret": intent["client_secret"],
        "payment_intent_id": intent["id"],
        "amount": "50.00",
        "currency": "USD",
        "publishable_key": "pk_test_fake_0123456789",
        "setup_intent_id": None,
    }
    payment = Payment.objects.get(booking=booking)
    assert (payment.kind, payment.stripe_id, payment.amount, payment.currency, payment.status) == (
        "charge",
        intent["id"],
        Decimal("50.00"),
        "USD",
        "requires_payment_method",
    )
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("pending", "unpaid")


def test_create_intent_zero_decimal_currency(fake_stripe, user, user_client):
    session = SessionFactory(price=Decimal("1500"), currency="JPY")
    booking = book(user, session)

    response = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 200
    (sent,) = fake_stripe.requests_to("POST", "/v1/payment_intents")
    assert (sent.params["amount"], sent.params["currency"]) == ("1500", "jpy")
    assert fake_stripe.intent(response.json()["payment_intent_id"])["amount"] == 1500
    assert (response.json()["amount"], response.json()["currency"]) == ("1500.00", "JPY")


def test_calling_again_reuses_the_open_intent(fake_stripe, user, user_client):
    booking = book(user, SessionFactory())

    first = user_client.post(CREATE_URL, {"booking_id": booking.pk}).json()
    second = user_client.post(CREATE_URL, {"booking_id": booking.pk}).json()

    assert second == first
    assert fake_stripe.intent_count == 1
    assert len(fake_stripe.requests_to("POST", "/v1/payment_intents")) == 1
    assert len(fake_stripe.requests_to("GET", f"/v1/payment_intents/{first['payment_intent_id']}"))
    assert Payment.objects.filter(booking=booking).count() == 1


def test_timeout_is_502_with_nothing_changed_and_a_retry_gets_the_same_intent(
    fake_stripe, user, user_client
):
    booking = book(user, SessionFactory())
    before = booking_state(booking)
    # Stripe creates the intent but its answer never arrives in time.
    fake_stripe.delay_next("/v1/payment_intents", 1.0, after_processing=True)

    response = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 502
    assert response.json() == {
        "detail": "The payment provider is unavailable; please try again in a moment.",
        "code": "payment_provider_unavailable",
    }
    assert booking_state(booking) == before
    assert fake_stripe.intent_count == 1

    retry = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert retry.status_code == 200
    assert fake_stripe.intent_count == 1
    (created_id,) = fake_stripe.state.intents
    assert retry.json()["payment_intent_id"] == created_id
    keys = {r.idempotency_key for r in fake_stripe.requests_to("POST", "/v1/payment_intents")}
    assert keys == {f"sm-booking-{booking.pk}-intent-1"}
    assert list(Payment.objects.values_list("stripe_id", flat=True)) == [created_id]


@pytest.mark.parametrize("status", [500, 503])
def test_stripe_5xx_is_502_with_nothing_changed(fake_stripe, user, user_client, status):
    booking = book(user, SessionFactory())
    before = booking_state(booking)
    fake_stripe.fail_next("/v1/payment_intents", status=status)

    response = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 502
    assert response.json()["code"] == "payment_provider_unavailable"
    assert booking_state(booking) == before
    assert fake_stripe.intent_count == 0


def test_client_retries_a_5xx_with_the_same_idempotency_key(fake_stripe, settings, user):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    booking = book(user, SessionFactory())
    fake_stripe.fail_next("/v1/payment_intents", status=500, after_processing=True)

    intent_id = start_payment(user, booking)

    sent = fake_stripe.requests_to("POST", "/v1/payment_intents")
    assert [r.idempotency_key for r in sent] == [f"sm-booking-{booking.pk}-intent-1"] * 2
    assert list(fake_stripe.state.intents) == [intent_id]


def test_stripe_refusal_is_400_with_stripes_message(fake_stripe, user, user_client):
    booking = book(user, SessionFactory(price=Decimal("0.10")))
    before = booking_state(booking)

    response = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Amount must be at least 50 cents.",
        "code": "payment_rejected",
    }
    assert booking_state(booking) == before


def test_someone_elses_booking_is_404_and_stripe_is_not_called(fake_stripe, user):
    booking = book(user, SessionFactory())
    before = booking_state(booking)

    response = auth_client(UserFactory()).post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 404
    assert response.json() == {"detail": "Booking not found.", "code": "not_found"}
    assert fake_stripe.state.requests == []
    assert booking_state(booking) == before


def test_unknown_booking_is_404(fake_stripe, user_client):
    response = user_client.post(CREATE_URL, {"booking_id": 999999})
    assert response.status_code == 404


@pytest.mark.parametrize("body", [{}, {"booking_id": "abc"}, {"booking_id": 0}, {"booking_id": -1}])
def test_invalid_input_is_400(fake_stripe, user_client, body):
    response = user_client.post(CREATE_URL, body)
    assert response.status_code == 400
    assert "booking_id" in response.json()["errors"]
    assert fake_stripe.state.requests == []


def test_anonymous_is_401(fake_stripe, api_client, user):
    booking = book(user, SessionFactory())
    assert api_client.post(CREATE_URL, {"booking_id": booking.pk}).status_code == 401
    assert api_client.post(CONFIRM_URL, {"payment_intent_id": "pi_x"}).status_code == 401


def test_free_booking_needs_no_payment(fake_stripe, user, user_client):
    booking = book(user, SessionFactory(price=Decimal("0")))

    response = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 409
    assert response.json()["code"] == "payment_not_required"
    assert fake_stripe.state.requests == []


def test_booking_past_its_hold_cannot_be_paid(fake_stripe, user, user_client):
    booking = book(user, SessionFactory())
    expire_hold(booking)
    before = booking_state(booking)

    response = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 409
    assert response.json() == {
        "detail": "This booking's hold has expired; please book again.",
        "code": "expired",
    }
    assert booking_state(booking) == before
    assert fake_stripe.state.requests == []


def test_paid_booking_cannot_be_paid_again(fake_stripe, user, user_client):
    booking = book(user, SessionFactory())
    intent_id = start_payment(user, booking)
    fake_stripe.succeed(intent_id)
    assert user_client.post(CONFIRM_URL, {"payment_intent_id": intent_id}).status_code == 200

    response = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 409
    assert response.json()["code"] == "already_paid"
    assert fake_stripe.intent_count == 1


def test_intent_paid_before_the_client_confirms_is_applied_not_reoffered(fake_stripe, user):
    # The webhook and the client's confirm both got lost; the user asks to pay again.
    booking = book(user, SessionFactory())
    fake_stripe.succeed(start_payment(user, booking))

    response = auth_client(user).post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 409
    assert response.json()["code"] == "already_paid"
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("confirmed", "paid")


def test_cancelled_intent_is_replaced_with_a_new_one(fake_stripe, user, user_client):
    booking = book(user, SessionFactory())
    first_id = start_payment(user, booking)
    fake_stripe.cancel(first_id)

    response = user_client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 200
    second_id = response.json()["payment_intent_id"]
    assert second_id != first_id
    assert fake_stripe.requests_to("POST", "/v1/payment_intents")[-1].idempotency_key == (
        f"sm-booking-{booking.pk}-intent-2"
    )
    assert dict(Payment.objects.values_list("stripe_id", "status")) == {
        first_id: "canceled",
        second_id: "requires_payment_method",
    }
    booking.refresh_from_db()
    # The cancelled attempt counts as a failed payment; the new intent can still succeed.
    assert (booking.status, booking.payment_status) == ("pending", "failed")


def test_without_a_secret_key_payment_endpoints_answer_503(settings, user, user_client):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    booking = book(user, SessionFactory())
    before = booking_state(booking)
    expected = {"detail": "payments are not configured", "code": "payments_not_configured"}

    for url, body in [
        (CREATE_URL, {"booking_id": booking.pk}),
        (CONFIRM_URL, {"payment_intent_id": "pi_123"}),
    ]:
        response = user_client.post(url, body)
        assert (response.status_code, response.json()) == (503, expected)
    webhook = user_client.post("/api/payment/webhook/", {}, HTTP_STRIPE_SIGNATURE="t=1,v1=x")
    assert (webhook.status_code, webhook.json()) == (503, expected)
    assert booking_state(booking) == before
    assert (before["status"], before["payment_status"]) == ("pending", "unpaid")


def test_free_sessions_book_without_stripe(settings, user):
    settings.STRIPE_SECRET_KEY = ""
    booking = booking_create(user=user, session_id=SessionFactory(price=Decimal("0")).pk)
    assert (booking.status, booking.payment_status) == ("confirmed", "not_required")


# --- confirm -----------------------------------------------------------------------------------


def test_confirm_applies_what_stripe_says_not_the_client(fake_stripe, user, user_client):
    booking = book(user, SessionFactory())
    intent_id = start_payment(user, booking)

    unpaid = user_client.post(CONFIRM_URL, {"payment_intent_id": intent_id})

    assert unpaid.status_code == 200
    assert (unpaid.json()["status"], unpaid.json()["payment_status"]) == ("pending", "unpaid")

    fake_stripe.succeed(intent_id)
    paid = user_client.post(CONFIRM_URL, {"payment_intent_id": intent_id})

    assert paid.status_code == 200
    body = paid.json()
    booking.refresh_from_db()
    assert body["id"] == booking.pk
    assert (body["status"], body["payment_status"], body["amount"], body["currency"]) == (
        "confirmed",
        "paid",
        "25.00",
        "USD",
    )
    assert body["user"] == {"id": user.pk, "username": user.username}
    assert body["session"]["id"] == booking.session_id
    assert booking.confirmed_at is not None
    assert Payment.objects.get(stripe_id=intent_id).status == "succeeded"


def test_confirm_after_a_decline_marks_the_payment_failed(fake_stripe, user, user_client):
    booking = book(user, SessionFactory())
    intent_id = start_payment(user, booking)
    fake_stripe.decline(intent_id)

    response = user_client.post(CONFIRM_URL, {"payment_intent_id": intent_id})

    assert (response.json()["status"], response.json()["payment_status"]) == ("pending", "failed")
    # Another card on the same intent still works within the hold.
    fake_stripe.succeed(intent_id)
    response = user_client.post(CONFIRM_URL, {"payment_intent_id": intent_id})
    assert (response.json()["status"], response.json()["payment_status"]) == ("confirmed", "paid")


def test_confirm_someone_elses_intent_is_404_without_calling_stripe(fake_stripe, user):
    booking = book(user, SessionFactory())
    intent_id = start_payment(user, booking)
    fake_stripe.succeed(intent_id)
    requests_before = len(fake_stripe.state.requests)
    before = booking_state(booking)

    response = auth_client(UserFactory()).post(CONFIRM_URL, {"payment_intent_id": intent_id})

    assert response.status_code == 404
    assert response.json() == {"detail": "Payment not found.", "code": "not_found"}
    assert len(fake_stripe.state.requests) == requests_before
    assert booking_state(booking) == before


@pytest.mark.parametrize("intent_id", ["", "ch_123", "pi_" + "x" * 300, "pi_../../v1/refunds"])
def test_confirm_with_a_malformed_id_is_400(fake_stripe, user_client, intent_id):
    response = user_client.post(CONFIRM_URL, {"payment_intent_id": intent_id})
    assert response.status_code == 400
    assert "payment_intent_id" in response.json()["errors"]


def test_confirm_when_stripe_is_down_is_502_with_nothing_changed(fake_stripe, user, user_client):
    booking = book(user, SessionFactory())
    intent_id = start_payment(user, booking)
    fake_stripe.succeed(intent_id)
    before = booking_state(booking)
    fake_stripe.delay_next(f"/v1/payment_intents/{intent_id}", 1.0, after_processing=False)

    response = user_client.post(CONFIRM_URL, {"payment_intent_id": intent_id})

    assert response.status_code == 502
    assert booking_state(booking) == before
    assert Booking.objects.get(pk=booking.pk).payment_status == "unpaid"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_create_intent_calls_share_one_intent(fake_stripe, user):
    booking = book(user, SessionFactory())
    callers = 8

    def create():
        response = auth_client(user).post(CREATE_URL, {"booking_id": booking.pk})
        return response.status_code, response.json().get("payment_intent_id")

    answers = run_concurrently([create] * callers, raise_errors=True)

    (intent_id,) = fake_stripe.state.intents
    assert answers == [(200, intent_id)] * callers
    assert list(Payment.objects.values_list("stripe_id", flat=True)) == [intent_id]
