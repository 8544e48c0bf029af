"""Helpers shared by the payment tests (the Stripe stand-in itself is fake_stripe.py)."""

from backend.models import Booking, Payment, StripeEvent
from backend.services.bookings import booking_create
from backend.services.payments import payment_confirm_from_client, payment_create_intent

WEBHOOK_URL = "/api/payment/webhook/"


def book(user, session, seats: int = 1) -> Booking:
    return booking_create(user=user, session_id=session.pk, seats=seats)


def start_payment(user, booking: Booking) -> str:
    """Creates the booking's PaymentIntent through the service; returns its id."""
    intent_id = payment_create_intent(user=user, booking_id=booking.pk).payment_intent_id
    assert intent_id is not None
    return intent_id


def pay(fake, user, booking: Booking) -> tuple[Booking, str]:
    """The whole happy path: intent, the customer pays at Stripe, the client confirms."""
    intent_id = start_payment(user, booking)
    fake.succeed(intent_id)
    return payment_confirm_from_client(user=user, payment_intent_id=intent_id), intent_id


def deliver(client, payload: bytes, signature: str | None):
    extra = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(WEBHOOK_URL, data=payload, content_type="application/json", **extra)


def booking_state(booking: Booking) -> dict:
    """Everything a payment may change, to assert that nothing did."""
    fresh = Booking.objects.get(pk=booking.pk)
    return {
        "status": fresh.status,
        "payment_status": fresh.payment_status,
        "confirmed_at": fresh.confirmed_at,
        "cancelled_at": fresh.cancelled_at,
        "updated_at": fresh.updated_at,
        "payments": sorted(
            Payment.objects.filter(booking=fresh).values_list("kind", "stripe_id", "status")
        ),
        "events": StripeEvent.objects.count(),
    }
