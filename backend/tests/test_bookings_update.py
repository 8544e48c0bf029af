"""Updating bookings through the API: notes, seats, read-only fields, PUT round trip."""

from decimal import Decimal

import pytest

from backend.models import Session
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client
from backend.tests.support.bookings import snapshot

pytestmark = pytest.mark.django_db


# --- update --------------------------------------------------------------------------------


def test_user_updates_notes(user_client, user):
    booking = BookingFactory(user=user, notes="old")
    response = user_client.patch(f"/api/bookings/{booking.pk}/", {"notes": "new"})
    assert response.status_code == 200
    assert response.json()["notes"] == "new"
    booking.refresh_from_db()
    assert booking.notes == "new"


def test_seats_change_while_pending_recomputes_amount_from_booking_time_price(user_client, user):
    session = SessionFactory(price=Decimal("20.00"), capacity=5)
    booking = BookingFactory(
        user=user, session=session, seats=2, status="pending", payment_status="unpaid"
    )
    # A later price change does not touch the booking: 20.00 a seat stays.
    Session.objects.filter(pk=session.pk).update(price=Decimal("99.00"))
    response = user_client.put(f"/api/bookings/{booking.pk}/", {"seats": 4, "notes": "x"})
    assert response.status_code == 200
    assert response.json()["seats"] == 4
    assert response.json()["amount"] == "80.00"
    booking.refresh_from_db()
    assert (booking.seats, booking.amount, booking.notes) == (4, Decimal("80.00"), "x")


def test_seats_change_is_checked_against_capacity(user_client, user):
    session = SessionFactory(capacity=4)
    BookingFactory(session=session, seats=2)
    booking = BookingFactory(
        user=user, session=session, seats=1, status="pending", payment_status="unpaid"
    )
    before = snapshot(booking)
    response = user_client.patch(f"/api/bookings/{booking.pk}/", {"seats": 3})
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Only 2 seat(s) left for this session.",
        "code": "not_enough_seats",
    }
    assert snapshot(booking) == before
    # Its own seat counts as free for the change: 1 -> 2 fits exactly.
    assert user_client.patch(f"/api/bookings/{booking.pk}/", {"seats": 2}).status_code == 200


@pytest.mark.parametrize(
    ("status", "payment_status", "code"),
    [
        ("confirmed", "not_required", "seats_locked"),
        ("confirmed", "paid", "seats_locked"),
        ("pending", "failed", "seats_locked"),
        ("pending", "paid", "seats_locked"),
        ("cancelled", "unpaid", "not_active"),
        ("expired", "unpaid", "not_active"),
    ],
)
def test_seats_change_refused_unless_pending_and_unpaid(
    user_client, user, status, payment_status, code
):
    booking = BookingFactory(user=user, status=status, payment_status=payment_status)
    before = snapshot(booking)
    response = user_client.patch(f"/api/bookings/{booking.pk}/", {"seats": 2})
    assert response.status_code == 409
    assert response.json()["code"] == code
    assert snapshot(booking) == before


def test_read_only_fields_are_refused_on_update(user_client, user):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    before = snapshot(booking)
    response = user_client.patch(
        f"/api/bookings/{booking.pk}/",
        {"status": "confirmed", "payment_status": "paid", "amount": "0.00"},
    )
    assert response.status_code == 400  # was ignored (200); now refused (test_booking_update.py)
    assert snapshot(booking) == before


@pytest.mark.parametrize("payload", [{"seats": 0}, {"seats": 11}, {"seats": "x"}, {"notes": None}])
def test_invalid_update_is_400_and_changes_nothing(user_client, user, payload):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    before = snapshot(booking)
    response = user_client.patch(f"/api/bookings/{booking.pk}/", payload, format="json")
    assert response.status_code == 400
    assert snapshot(booking) == before


def test_creator_may_not_update_and_others_get_404(user, creator):
    booking = BookingFactory(
        user=user,
        session=SessionFactory(creator=creator),
        status="pending",
        payment_status="unpaid",
        notes="mine",
    )
    before = snapshot(booking)
    response = auth_client(creator).patch(f"/api/bookings/{booking.pk}/", {"notes": "theirs"})
    assert response.status_code == 403
    response = auth_client(UserFactory()).patch(f"/api/bookings/{booking.pk}/", {"seats": 2})
    assert response.status_code == 404
    response = auth_client(UserFactory()).put(f"/api/bookings/{booking.pk}/", {"notes": "x"})
    assert response.status_code == 404
    assert snapshot(booking) == before


def test_putting_back_the_received_object_changes_only_notes(user_client, user):
    booking = BookingFactory(user=user, seats=2, notes="old")
    received = user_client.get(f"/api/bookings/{booking.pk}/").json()
    received["notes"] = "new"
    response = user_client.put(f"/api/bookings/{booking.pk}/", received, format="json")
    assert response.status_code == 200
    assert response.json() == {**received, "notes": "new"}
    booking.refresh_from_db()
    assert (booking.seats, booking.notes, booking.status) == (2, "new", "confirmed")
