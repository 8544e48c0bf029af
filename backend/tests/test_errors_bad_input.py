"""Issue 14, "Bad input must never be a 500": each item answers a JSON 4xx with a registered
code and changes nothing."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from backend.errors import ErrorCode
from backend.models import Booking, Payment, StripeEvent
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import WEBHOOK_URL, book, booking_state, deliver
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db

THREE_MB = 3 * 1024 * 1024


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    registered = ErrorCode.lookup(body["code"])
    assert registered is not None and registered.value == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def big_json_body() -> str:
    body = json.dumps({"username": "a", "password": "b", "padding": "x" * THREE_MB})
    assert len(body) > THREE_MB
    return body


def test_3mb_json_body_to_token_is_413(settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    response = APIClient().post(
        "/api/auth/token/", data=big_json_body(), content_type="application/json"
    )
    assert_error(response, 413, "request_too_large")


def test_3mb_body_to_webhook_is_413_and_stores_nothing(settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    response = APIClient().post(
        WEBHOOK_URL,
        data=big_json_body(),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=abc",
    )
    assert_error(response, 413, "request_too_large")
    assert StripeEvent.objects.count() == 0


def test_form_with_over_1000_fields_is_400():
    form = "&".join(f"f{index}=x" for index in range(1100))
    response = APIClient().post(
        "/api/auth/token/", data=form, content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 400, "too_many_fields")


def test_query_string_with_over_1000_fields_is_400():
    query = "&".join(f"f{index}=x" for index in range(1100))
    response = APIClient().get(f"/api/sessions/?{query}")
    assert_error(response, 400, "too_many_fields")


@pytest.mark.parametrize("url", ["/api/auth/token/", "/api/bookings/", "/api/sessions/"])
def test_deeply_nested_json_is_400_invalid_json(url):
    client = auth_client(CreatorFactory())
    before = Booking.objects.count()
    response = client.post(url, data="[" * 3000, content_type="application/json")
    assert_error(response, 400, "invalid_json")
    assert Booking.objects.count() == before


def test_malformed_json_is_400_invalid_json():
    response = APIClient().post(
        "/api/auth/token/", data='{"username": ', content_type="application/json"
    )
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/users/me.json"),
        ("get", "/api/sessions.json"),
        ("get", "/api/sessions/{session}.json"),
        ("get", "/api/bookings/{booking}.json"),
        ("post", "/api/bookings/{booking}/cancel.json"),
        ("post", "/api/bookings/{booking}/confirm.json"),
        ("get", "/api/sessions/my_sessions.json"),
        ("get", "/api/sessions/{session}/bookings.json"),
        ("patch", "/api/users/update_profile.json"),
    ],
)
def test_format_suffixes_are_404_or_served_never_500(method, path):
    booking = BookingFactory()
    # The creator's endpoints are asked by the creator, so that 404 is not a 403 in disguise.
    client = auth_client(booking.session.creator if "sessions/" in path else booking.user)
    before = booking_snapshot(booking)
    url = path.format(session=booking.session_id, booking=booking.pk)
    response = getattr(client, method)(url, data={}, format="json")
    assert response.status_code in (200, 404), (url, response.status_code)
    assert response["Content-Type"].startswith("application/json")
    if response.status_code == 404:
        assert response.json()["code"] == "not_found"
    assert booking_snapshot(booking) == before


def booking_snapshot(booking):
    return list(Booking.objects.filter(pk=booking.pk).values())


@pytest.mark.parametrize("path", ["/api/sessions/", "/api/auth/token/", "/api/nowhere/"])
def test_bad_host_under_api_is_json_400(path):
    response = Client().get(path, HTTP_HOST="evil.example.com")
    assert_error(response, 400, "bad_host")


def test_bad_host_outside_api_keeps_djangos_page():
    response = Client().get("/admin/", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")


# --- malformed Stripe events (signed, so they pass the signature check) -----------------------


def intent_object(booking: Booking, **changes) -> dict:
    obj = {
        "id": "pi_malformed_1",
        "object": "payment_intent",
        "amount": 2500,
        "currency": "eur",
        "status": "succeeded",
        "metadata": {"booking_id": str(booking.pk)},
    }
    obj.update(changes)
    return {key: value for key, value in obj.items() if value is not DROP}


def charge_object(booking: Booking, refund: dict) -> dict:
    return {
        "id": "ch_malformed_1",
        "object": "charge",
        "payment_intent": "pi_malformed_1",
        "amount": 2500,
        "amount_refunded": 2500,
        "currency": "eur",
        "refunded": True,
        "metadata": {"booking_id": str(booking.pk)},
        "refunds": {"object": "list", "data": [refund]},
    }


DROP = object()

MALFORMED_INTENTS = {
    "amount not a number": {"amount": "abc"},
    "amount a float": {"amount": 25.5},
    "metadata a list": {"metadata": ["booking_id", "1"]},
    "no id": {"id": DROP},
    "id not a string": {"id": 12},
    "status a dict": {"status": {"a": 1}},
    "currency a number": {"currency": 978},
}


@pytest.fixture
def paid_session_booking(settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_malformed"
    user = UserFactory()
    return book(user, SessionFactory(price="25.00", currency="EUR"))


@pytest.mark.parametrize("event_type", ["payment_intent.succeeded", "payment_intent.canceled"])
@pytest.mark.parametrize("kind", sorted(MALFORMED_INTENTS))
def test_malformed_intent_event_is_400_invalid_event(paid_session_booking, kind, event_type):
    booking = paid_session_booking
    before = booking_state(booking)
    payload, signature = FakeStripe.signed_event(
        event_type,
        intent_object(booking, **MALFORMED_INTENTS[kind]),
        secret="whsec_malformed",
    )
    assert_error(deliver(APIClient(), payload, signature), 400, "invalid_event")
    assert booking_state(booking) == before
    assert StripeEvent.objects.count() == 0


MALFORMED_REFUNDS = {
    "refund without id": {"object": "refund", "amount": 2500, "status": "succeeded"},
    "refund amount not a number": {"id": "re_1", "amount": "abc", "status": "succeeded"},
    "refund a string": "re_1",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED_REFUNDS))
def test_malformed_refund_event_stores_no_refund(paid_session_booking, kind):
    booking = paid_session_booking
    before = booking_state(booking)
    payload, signature = FakeStripe.signed_event(
        "charge.refunded",
        charge_object(booking, MALFORMED_REFUNDS[kind]),
        secret="whsec_malformed",
    )
    assert_error(deliver(APIClient(), payload, signature), 400, "invalid_event")
    assert booking_state(booking) == before
    assert not Payment.objects.filter(stripe_id="None").exists()


@pytest.mark.parametrize(
    "changes",
    [{"metadata": "booking"}, {"payment_intent": 5}, {"refunds": ["re_1"]}, {"refunded": "yes"}],
)
def test_malformed_charge_event_is_400(paid_session_booking, changes):
    booking = paid_session_booking
    before = booking_state(booking)
    obj = charge_object(booking, {"id": "re_1", "amount": 2500, "status": "succeeded"})
    obj.update(changes)
    payload, signature = FakeStripe.signed_event("charge.refunded", obj, secret="whsec_malformed")
    assert_error(deliver(APIClient(), payload, signature), 400, "invalid_event")
    assert booking_state(booking) == before


def test_deeply_nested_signed_webhook_is_400(settings):
    import stripe

    settings.STRIPE_WEBHOOK_SECRET = "whsec_nested"
    payload = "[" * 3000
    signature = stripe.WebhookSignature.generate_signature_header(payload, "whsec_nested")
    response = deliver(APIClient(), payload.encode(), signature)
    assert_error(response, 400, "invalid_payload")
