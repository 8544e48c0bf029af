"""Booking updates refuse read-only fields (as profile updates do); the `session` filter."""

from collections.abc import Mapping
from typing import Any

import pytest

from backend.models import Booking
from backend.tests.factories import BookingFactory, SessionFactory

pytestmark = pytest.mark.django_db


def state(booking: Booking) -> Mapping[str, Any]:
    return Booking.objects.filter(pk=booking.pk).values().get()


@pytest.mark.parametrize("method", ["patch", "put"])
@pytest.mark.parametrize(
    "changes",
    [
        {"status": "confirmed"},
        {"payment_status": "paid"},
        {"amount": "0.00"},
        {"status": "cancelled", "payment_status": "refunded", "amount": "1.00", "notes": "hi"},
        {"currency": "JPY", "seats": 2},
    ],
)
def test_read_only_booking_fields_are_a_400_and_change_nothing(user_client, user, method, changes):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    before = state(booking)
    response = getattr(user_client, method)(f"/api/bookings/{booking.pk}/", changes)
    assert response.status_code == 400
    refused = set(changes) - {"notes", "seats"}
    errors = response.data.get("errors", response.data)  # v2 error shape or v1's
    assert set(errors) == refused
    for field in refused:
        assert errors[field][0].startswith("This field cannot be changed here.")
        assert errors[field][0].code == "read_only"
    assert state(booking) == before


def test_status_error_says_where_status_changes(user_client, user):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    response = user_client.patch(f"/api/bookings/{booking.pk}/", {"status": "cancelled"})
    errors = response.json().get("errors", response.json())
    assert errors == {
        "status": [
            "This field cannot be changed here. Use POST /api/bookings/{id}/confirm/ or /cancel/."
        ]
    }


def test_the_received_object_may_be_sent_back_with_a_changed_status_refused(user_client, user):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid", notes="")
    received = user_client.get(f"/api/bookings/{booking.pk}/").json()
    response = user_client.put(f"/api/bookings/{booking.pk}/", {**received, "notes": "x"})
    assert response.status_code == 200
    before = state(booking)
    changed = {**received, "status": "confirmed", "amount": "1.00", "session": 999}
    response = user_client.put(f"/api/bookings/{booking.pk}/", changed)
    assert response.status_code == 400
    assert set(response.json().get("errors", response.json())) == {"status", "amount", "session"}
    assert state(booking) == before


def test_notes_alone_still_change(user_client, user):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid", notes="")
    response = user_client.patch(f"/api/bookings/{booking.pk}/", {"notes": "Vegetarian", "id": 1})
    assert response.status_code == 200
    assert Booking.objects.get(pk=booking.pk).notes == "Vegetarian"


def test_bookings_filter_by_session(user_client, user, django_assert_max_num_queries):
    first, second = SessionFactory(), SessionFactory()
    mine = BookingFactory(user=user, session=first)
    BookingFactory(user=user, session=second)
    BookingFactory(session=first)  # someone else's, same session
    for url in ("/api/bookings/", "/api/bookings/my_bookings/"):
        with django_assert_max_num_queries(6):
            response = user_client.get(url, {"session": first.pk})
        assert response.status_code == 200
        assert [b["id"] for b in response.json()["results"]] == [mine.pk]
    response = user_client.get("/api/bookings/", {"session": 2**62})
    assert response.json()["count"] == 0


@pytest.mark.parametrize("value", ["abc", "0", "-3", str(2**63)])
def test_bookings_session_filter_rejects_what_is_not_an_id(user_client, value):
    response = user_client.get("/api/bookings/", {"session": value})
    assert response.status_code == 400
    assert "session" in response.json().get("errors", response.json())
