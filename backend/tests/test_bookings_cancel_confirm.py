"""Confirming and cancelling bookings through the API, refund hook included."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.models import Booking
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client
from backend.tests.support.bookings import snapshot

pytestmark = pytest.mark.django_db


# --- confirm and cancel --------------------------------------------------------------------


def test_creator_confirms_a_pending_booking_that_needs_no_payment(user, creator):
    booking = BookingFactory(
        user=user,
        session=SessionFactory(creator=creator),
        status="pending",
        payment_status="not_required",
    )
    response = auth_client(creator).post(f"/api/bookings/{booking.pk}/confirm/")
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed"
    assert response.json()["confirmed_at"] is not None
    booking.refresh_from_db()
    assert booking.status == "confirmed"


def test_confirming_an_unpaid_booking_of_a_paid_session_is_409(creator):
    booking = BookingFactory(
        session=SessionFactory(creator=creator), status="pending", payment_status="unpaid"
    )
    before = snapshot(booking)
    response = auth_client(creator).post(f"/api/bookings/{booking.pk}/confirm/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "This booking is for a paid session and has not been paid yet.",
        "code": "unpaid",
    }
    assert snapshot(booking) == before


def test_booking_user_cannot_confirm_and_strangers_get_404(user):
    booking = BookingFactory(user=user, status="pending", payment_status="not_required")
    before = snapshot(booking)
    assert auth_client(user).post(f"/api/bookings/{booking.pk}/confirm/").status_code == 403
    stranger = auth_client(CreatorFactory())
    assert stranger.post(f"/api/bookings/{booking.pk}/confirm/").status_code == 404
    assert snapshot(booking) == before


def test_user_cancels_and_the_seat_is_free_at_once(user_client, user):
    session = SessionFactory(capacity=1, price=Decimal("0.00"))
    booking = BookingFactory(user=user, session=session)
    other = auth_client(UserFactory())
    assert other.post("/api/bookings/", {"session": session.pk}).status_code == 409
    response = user_client.post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelled_at"] is not None
    assert other.post("/api/bookings/", {"session": session.pk}).status_code == 201


def test_user_cannot_cancel_after_the_start_but_the_creator_can(user, creator):
    session = SessionFactory(creator=creator, start_time=timezone.now() - timedelta(minutes=5))
    booking = BookingFactory(user=user, session=session)
    before = snapshot(booking)
    response = auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "session_started"
    assert snapshot(booking) == before
    assert auth_client(creator).post(f"/api/bookings/{booking.pk}/cancel/").status_code == 200


def test_strangers_cannot_cancel(user):
    booking = BookingFactory(user=user)
    before = snapshot(booking)
    response = auth_client(UserFactory()).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 404
    assert snapshot(booking) == before


def test_cancelling_a_paid_booking_calls_the_refund_hook(user, monkeypatch):
    refunded = []

    def fake_refund(*, booking, actor, amount):
        refunded.append((booking.pk, amount))
        booking.payment_status = Booking.PaymentStatus.REFUNDED
        booking.save(update_fields=["payment_status", "updated_at"])

    monkeypatch.setattr("backend.services.refunds.refund_booking", fake_refund)
    booking = BookingFactory(user=user, payment_status="paid")
    response = auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["payment_status"] == "refunded"
    # The default policy (24 h before: 100 %) and a session days ahead: all of it.
    assert refunded == [(booking.pk, booking.amount)]


def test_unpaid_cancellation_does_not_call_the_refund_hook(user, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "backend.services.refunds.refund_booking",
        lambda *, booking, actor, amount: calls.append(booking.pk),
    )
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    assert auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/").status_code == 200
    assert calls == []


def test_paid_booking_inside_the_cancellation_window_is_409_for_the_user(user, settings):
    settings.CANCELLATION_WINDOW_HOURS = 24
    session = SessionFactory(start_time=timezone.now() + timedelta(hours=2))
    booking = BookingFactory(user=user, session=session, payment_status="paid")
    before = snapshot(booking)
    response = auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "cancellation_window"
    assert snapshot(booking) == before
