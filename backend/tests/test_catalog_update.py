"""Editing sessions through the API: PATCH and PUT, capacity, times, status changes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.models import Booking
from backend.tests.factories import BookingFactory, SessionFactory
from backend.tests.support import backdate
from backend.tests.support.catalog import future, payload

pytestmark = pytest.mark.django_db


# --- Updates -------------------------------------------------------------------------------


def test_patch_checks_the_merged_result(creator_client, session):
    # The session is online with a meeting URL: going in-person needs a location and no URL.
    response = creator_client.patch(f"/api/sessions/{session.pk}/", {"is_online": False})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"meeting_url", "location"}
    session.refresh_from_db()
    assert session.is_online is True

    response = creator_client.patch(
        f"/api/sessions/{session.pk}/",
        {"is_online": False, "meeting_url": "", "location": "Room 1"},
    )
    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert (session.is_online, session.meeting_url, session.location) == (False, "", "Room 1")


def test_put_needs_every_required_field(creator_client, session):
    response = creator_client.put(f"/api/sessions/{session.pk}/", {"title": "Only a title"})
    assert response.status_code == 400
    assert {"price", "duration_minutes", "start_time", "capacity"} <= set(response.json()["errors"])
    session.refresh_from_db()
    assert session.title != "Only a title"


def test_put_replaces_fields(creator_client, session):
    start = future(10)
    body = payload(start_time=start.isoformat(), status="draft", meeting_url="")
    response = creator_client.put(f"/api/sessions/{session.pk}/", body)
    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert (session.title, session.currency, session.start_time, session.status) == (
        "Intro to pottery",
        "EUR",
        start,
        "draft",
    )


def test_price_change_keeps_existing_booking_amounts(creator_client, session):
    booking = BookingFactory(session=session, seats=2)
    response = creator_client.patch(f"/api/sessions/{session.pk}/", {"price": "35.00"})
    assert response.status_code == 200
    assert response.json()["price"] == "35.00"
    booking.refresh_from_db()
    assert booking.amount == Decimal("40.00")


def test_capacity_below_seats_taken_is_409(creator_client, session):
    BookingFactory(session=session, seats=2)
    BookingFactory(session=session, seats=1, status=Booking.Status.PENDING)
    BookingFactory(session=session, seats=3, status=Booking.Status.CANCELLED)
    response = creator_client.patch(f"/api/sessions/{session.pk}/", {"capacity": 2})
    assert response.status_code == 409
    assert response.json()["code"] == "capacity_below_seats_taken"
    session.refresh_from_db()
    assert session.capacity == 5

    response = creator_client.patch(f"/api/sessions/{session.pk}/", {"capacity": 3})
    assert response.status_code == 200
    assert response.json()["seats_left"] == 0


def test_expired_holds_do_not_count_against_capacity(creator_client, session):
    stale = BookingFactory(session=session, seats=4, status=Booking.Status.PENDING)
    backdate(stale, created_at=timedelta(hours=1), hold_expires_at=timedelta(minutes=45))
    response = creator_client.patch(f"/api/sessions/{session.pk}/", {"capacity": 1})
    assert response.status_code == 200
    assert response.json()["seats_left"] == 1


def test_start_time_cannot_move_into_the_past(creator_client, session):
    response = creator_client.patch(
        f"/api/sessions/{session.pk}/", {"start_time": "2020-01-01T00:00:00Z"}
    )
    assert response.status_code == 400
    assert "start_time" in response.json()["errors"]


def test_naive_start_time_on_patch_is_400(creator_client, session):
    before = session.start_time
    response = creator_client.patch(
        f"/api/sessions/{session.pk}/", {"start_time": "2027-01-01T10:00:00"}
    )
    assert response.status_code == 400
    session.refresh_from_db()
    assert session.start_time == before


def test_past_session_can_still_be_edited_without_moving_it(creator_client, creator):
    past = SessionFactory(creator=creator, start_time=timezone.now() - timedelta(days=1))
    response = creator_client.patch(f"/api/sessions/{past.pk}/", {"title": "Recording posted"})
    assert response.status_code == 200


def test_publishing_a_draft_whose_start_passed_is_400(creator_client, creator):
    draft = SessionFactory(
        creator=creator, status="draft", start_time=timezone.now() - timedelta(hours=1)
    )
    response = creator_client.patch(f"/api/sessions/{draft.pk}/", {"status": "published"})
    assert response.status_code == 400
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_published_with_active_bookings_cannot_go_back_to_draft(creator_client, session):
    BookingFactory(session=session)
    response = creator_client.patch(f"/api/sessions/{session.pk}/", {"status": "draft"})
    assert response.status_code == 409
    session.refresh_from_db()
    assert session.status == "published"


def test_published_without_bookings_can_go_back_to_draft(creator_client, session):
    response = creator_client.patch(f"/api/sessions/{session.pk}/", {"status": "draft"})
    assert response.status_code == 200
    assert response.json()["status"] == "draft"
