"""Refunds when a paid booking is cancelled (services.bookings.booking_cancel)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.exceptions import (
    BookingError,
    IntegrationNotConfigured,
)
from backend.models import OutboxMessage, Payment
from backend.services.bookings import booking_cancel
from backend.services.outbox import outbox_execute
from backend.tests.factories import SessionFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import book, booking_state, deliver, pay

pytestmark = pytest.mark.django_db


def paid_booking(fake, user, **session_fields):
    booking, intent_id = pay(fake, user, book(user, SessionFactory(**session_fields)))
    assert (booking.status, booking.payment_status) == ("confirmed", "paid")
    return booking, intent_id


@pytest.mark.parametrize("actor", ["user", "creator"])
def test_cancelling_a_paid_booking_refunds_it_once(
    fake_stripe, user, actor, django_capture_on_commit_callbacks
):
    booking, intent_id = paid_booking(fake_stripe, user, price=Decimal("40.00"))
    who = user if actor == "user" else booking.session.creator

    # The refund is a task, queued with the cancellation: nothing at Stripe before the commit.
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = booking_cancel(booking_id=booking.pk, actor=who)
        assert fake_stripe.requests_to("POST", "/v1/refunds") == []
    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "paid")

    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "refunded")
    (request,) = fake_stripe.requests_to("POST", "/v1/refunds")
    assert request.params == {
        "payment_intent": intent_id,
        "metadata[booking_id]": str(booking.pk),
    }
    assert request.idempotency_key == f"sm-refund-{intent_id}"
    (refund,) = fake_stripe.state.refunds.values()
    assert refund["amount"] == 4000
    row = Payment.objects.get(booking=booking, kind="refund")
    assert (row.stripe_id, row.amount, row.currency, row.status) == (
        refund["id"],
        Decimal("40.00"),
        "USD",
        "succeeded",
    )

    with pytest.raises(BookingError):
        booking_cancel(booking_id=booking.pk, actor=who)
    assert len(fake_stripe.requests_to("POST", "/v1/refunds")) == 1


def test_refund_still_pending_at_stripe_is_settled_by_the_webhook(
    fake_stripe, api_client, user, django_capture_on_commit_callbacks
):
    booking, intent_id = paid_booking(fake_stripe, user)
    fake_stripe.set_refund_status("pending")

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = booking_cancel(booking_id=booking.pk, actor=user)

    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "paid")
    charge = fake_stripe.charge_for(intent_id)
    response = deliver(api_client, *FakeStripe.signed_event("charge.refunded", charge))
    assert response.json()["outcome"] == "refunded"
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "refunded")
    assert Payment.objects.get(booking=booking, kind="refund").status == "succeeded"
    assert len(fake_stripe.requests_to("POST", "/v1/refunds")) == 1


@pytest.mark.parametrize("failure", ["500", "timeout"])
def test_stripe_failing_the_refund_keeps_the_cancellation_and_retries(
    fake_stripe, user, failure, django_capture_on_commit_callbacks
):
    # Behaviour changed on purpose (issue 15): the cancellation no longer waits for Stripe or
    # rolls back with it; the refund task is retried with backoff until Stripe answers.
    booking, intent_id = paid_booking(fake_stripe, user)
    if failure == "500":
        fake_stripe.fail_next("/v1/refunds", status=500)
    else:
        # Stripe makes the refund, but the answer comes too late.
        fake_stripe.delay_next("/v1/refunds", 1.0, after_processing=True)

    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=booking.pk, actor=user)

    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("cancelled", "paid")
    message = OutboxMessage.objects.get(effect_key=f"refund:{intent_id}")
    assert (message.status, message.attempts) == ("pending", 1)
    assert message.available_at > timezone.now()

    # The retry refunds; after a timeout the idempotency key returns Stripe's first refund.
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=timezone.now())
    assert outbox_execute(message_id=message.pk) == "done"
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("cancelled", "refunded")
    assert fake_stripe.refund_count == 1
    keys = {r.idempotency_key for r in fake_stripe.requests_to("POST", "/v1/refunds")}
    assert keys == {f"sm-refund-{intent_id}"}
    assert Payment.objects.filter(booking=booking, kind="refund").count() == 1


def test_stripe_refusing_the_refund_is_logged_and_left_to_staff(
    fake_stripe, user, caplog, django_capture_on_commit_callbacks
):
    booking, intent_id = paid_booking(fake_stripe, user)
    fake_stripe.fail_next(
        "/v1/refunds",
        status=400,
        error_type="invalid_request_error",
        message="Charge ch_1 has already been refunded.",
    )

    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=booking.pk, actor=user)

    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("cancelled", "paid")
    message = OutboxMessage.objects.get(effect_key=f"refund:{intent_id}")
    assert message.status == "failed"
    assert "Charge ch_1 has already been refunded." in message.last_error
    assert Payment.objects.filter(booking=booking, kind="refund").count() == 0


def test_paid_booking_cannot_be_cancelled_by_its_user_inside_the_window(
    fake_stripe, settings, user, django_capture_on_commit_callbacks
):
    settings.CANCELLATION_WINDOW_HOURS = 24
    booking, _ = paid_booking(fake_stripe, user, start_time=timezone.now() + timedelta(hours=23))
    before = booking_state(booking)

    with pytest.raises(BookingError) as error:
        booking_cancel(booking_id=booking.pk, actor=user)

    assert (error.value.status_code, error.value.code) == (409, "cancellation_window")
    assert booking_state(booking) == before
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []

    # The creator may still cancel, and the user is refunded.
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = booking_cancel(booking_id=booking.pk, actor=booking.session.creator)
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "refunded")


def test_paid_booking_can_be_cancelled_just_outside_the_window(
    fake_stripe, settings, user, django_capture_on_commit_callbacks
):
    settings.CANCELLATION_WINDOW_HOURS = 24
    booking, _ = paid_booking(fake_stripe, user, start_time=timezone.now() + timedelta(hours=25))

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = booking_cancel(booking_id=booking.pk, actor=user)

    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "refunded")


def test_refund_without_stripe_configured_is_503_and_cancels_nothing(fake_stripe, settings, user):
    booking, _ = paid_booking(fake_stripe, user)
    before = booking_state(booking)
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(IntegrationNotConfigured):
        booking_cancel(booking_id=booking.pk, actor=user)

    assert booking_state(booking) == before


def test_unpaid_booking_is_cancelled_without_stripe(fake_stripe, user):
    booking = book(user, SessionFactory())

    cancelled = booking_cancel(booking_id=booking.pk, actor=user)

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "unpaid")
    assert fake_stripe.state.requests == []


# --- an unpaid checkout dies with its booking --------------------------------------------------


def test_cancelling_an_unpaid_booking_cancels_its_open_intent_at_stripe(
    fake_stripe, user, django_capture_on_commit_callbacks
):
    from backend.tests.payments_support import start_payment

    booking = book(user, SessionFactory())
    intent_id = start_payment(user, booking)

    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=booking.pk, actor=user)

    assert fake_stripe.state.intents[intent_id]["status"] == "canceled"
    assert len(fake_stripe.requests_to("POST", f"/v1/payment_intents/{intent_id}/cancel")) == 1
    assert Payment.objects.get(stripe_id=intent_id).status == "canceled"
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("cancelled", "unpaid")


def test_intent_cancel_failing_at_stripe_keeps_the_cancellation(
    fake_stripe, user, django_capture_on_commit_callbacks
):
    from backend.tests.payments_support import start_payment

    booking = book(user, SessionFactory())
    intent_id = start_payment(user, booking)
    fake_stripe.fail_next(f"/v1/payment_intents/{intent_id}/cancel", status=500)

    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=booking.pk, actor=user)

    booking.refresh_from_db()
    assert booking.status == "cancelled"
    assert Payment.objects.get(stripe_id=intent_id).status == "requires_payment_method"


def test_cancelling_a_free_booking_calls_no_stripe(
    fake_stripe, user, django_capture_on_commit_callbacks
):
    booking = book(user, SessionFactory(price=Decimal("0.00")))

    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=booking.pk, actor=user)

    assert fake_stripe.state.requests == []
