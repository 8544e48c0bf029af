"""GET /api/bookings/{id}/calendar.ics: an RFC 5545 event, only for who may see the booking."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from icalendar import Calendar

from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db

# 18:30 in UTC+02:00 is 16:30 UTC: the event must say 16:30Z whatever zone came in.
START = datetime(2031, 5, 4, 18, 30, tzinfo=timezone(timedelta(hours=2)))


@pytest.fixture
def booking():
    creator = CreatorFactory(email="host@example.com", first_name="Hana", last_name="Host")
    session = SessionFactory(
        creator=creator,
        title="Intro to Go, part 1; basics",
        description="Bring a laptop.",
        start_time=START,
        duration_minutes=90,
        is_online=True,
        location="",
        meeting_url="https://meet.example.com/go-1",
    )
    return BookingFactory(session=session, seats=2)


def fetch(booking, user=None):
    client = auth_client(user or booking.user)
    return client.get(f"/api/bookings/{booking.pk}/calendar.ics")


def event_of(response):
    calendar = Calendar.from_ical(response.content)
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"] == "-//Sessions Marketplace//Bookings//EN"
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return events[0]


def test_confirmed_booking_event(booking):
    response = fetch(booking)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="booking-{booking.pk}.ics"'
    raw = response.content.decode()
    assert "\r\n" in raw  # RFC 5545 lines end in CRLF
    assert "DTSTART:20310504T163000Z\r\n" in raw
    assert "DTEND:20310504T180000Z\r\n" in raw
    event = event_of(response)
    assert event["UID"] == f"booking-{booking.pk}@sessions-marketplace"
    assert event.decoded("DTSTART") == datetime(2031, 5, 4, 16, 30, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2031, 5, 4, 18, 0, tzinfo=UTC)
    assert event["SUMMARY"] == "Intro to Go, part 1; basics"
    assert event["LOCATION"] == "https://meet.example.com/go-1"
    assert event["URL"] == "https://meet.example.com/go-1"
    assert event["STATUS"] == "CONFIRMED"
    # Its address is the platform's, never the creator's: test_privacy.py.
    assert event["ORGANIZER"].params["CN"] == "Hana Host"
    assert "DTSTAMP" in event
    assert "Join: https://meet.example.com/go-1" in str(event["DESCRIPTION"])


def test_pending_booking_has_no_meeting_link(booking):
    booking.status = "pending"
    booking.payment_status = "unpaid"
    booking.save()
    event = event_of(fetch(booking))
    assert event["STATUS"] == "TENTATIVE"
    assert "URL" not in event
    assert "LOCATION" not in event
    assert "meet.example.com" not in str(event["DESCRIPTION"])


def test_physical_location_is_always_there(booking):
    session = booking.session
    session.location = "Room 4, 1 Main St"
    session.is_online = False
    session.meeting_url = ""
    session.save()
    booking.status = "pending"
    booking.payment_status = "unpaid"
    booking.save()
    assert event_of(fetch(booking))["LOCATION"] == "Room 4, 1 Main St"


def test_cancelled_booking_gives_a_cancelled_event(booking):
    booking.status = "cancelled"
    booking.save()
    event = event_of(fetch(booking))
    assert event["STATUS"] == "CANCELLED"
    assert event["SEQUENCE"] == 2
    assert "URL" not in event


def test_creator_may_download_it_strangers_get_json_404(booking):
    assert fetch(booking, booking.session.creator).status_code == 200
    for stranger in (UserFactory(), CreatorFactory()):
        response = fetch(booking, stranger)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Booking not found.", "code": "not_found"}


def test_anonymous_gets_json_401(booking, api_client):
    response = api_client.get(f"/api/bookings/{booking.pk}/calendar.ics")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


def test_any_accept_header_gets_the_calendar(booking):
    client = auth_client(booking.user)
    for accept in ("application/json", "text/calendar", "*/*", "image/png"):
        response = client.get(f"/api/bookings/{booking.pk}/calendar.ics", HTTP_ACCEPT=accept)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/calendar; charset=utf-8"


@pytest.mark.parametrize(
    "path",
    [
        "calendar",
        "calendar/",
        "calendar.ics/",
        "calendar.json",
        "calendar.icsx",
    ],
)
def test_only_the_ics_url_exists(booking, path):
    """The router's format-suffix patterns must not serve the calendar under other names."""
    response = auth_client(booking.user).get(f"/api/bookings/{booking.pk}/{path}")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_detail_url_with_an_ics_suffix_is_not_a_calendar(booking):
    response = auth_client(booking.user).get(f"/api/bookings/{booking.pk}.ics")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_schema_describes_the_bookings_endpoints(api_client):
    paths = api_client.get("/swagger.json").json()["paths"]
    assert {path for path in paths if path.startswith("/bookings")} == {
        "/bookings/",
        "/bookings/active/",
        "/bookings/my_bookings/",
        "/bookings/past/",
        "/bookings/{id}/",
        "/bookings/{id}/calendar.ics",
        "/bookings/{id}/cancel/",
        "/bookings/{id}/cancel_quote/",
        "/bookings/{id}/confirm/",
        "/bookings/{id}/events/",
        "/bookings/{id}/reschedule/",
        "/bookings/{id}/review/",
    }
    calendar = paths["/bookings/{id}/calendar.ics"]["get"]
    # Errors of the calendar endpoint are JSON, like everywhere else.
    assert calendar["produces"] == ["text/calendar", "application/json"]
    assert [p["name"] for p in calendar.get("parameters", [])] == []
    create = paths["/bookings/"]["post"]
    body = next(p for p in create["parameters"] if p["in"] == "body")
    assert body["schema"]["$ref"] == "#/definitions/BookingCreate"
    assert set(paths["/bookings/{id}/"]) >= {"get", "put", "patch", "parameters"}
    assert "delete" not in paths["/bookings/{id}/"]
    assert paths["/bookings/{id}/"]["parameters"][0]["type"] == "integer"
    for url in ("/bookings/", "/bookings/my_bookings/", "/bookings/active/", "/bookings/past/"):
        names = [p["name"] for p in paths[url]["get"]["parameters"]]
        assert names == ["status", "payment_status", "session", "page", "page_size"]
