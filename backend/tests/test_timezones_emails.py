"""Issue 17: a writable time zone on users, e-mails in the recipient's zone (HTML and text,
with what to do next and the .ics attached), and .ics files with TZID, VTIMEZONE, a stable
UID and a SEQUENCE that grows when the session's time or place changes."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from icalendar import Calendar

from backend.models import Session, User
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
PROFILE_URL = "/api/users/update_profile/"


def day_after_spring_dst_change() -> date:
    """The Monday after the last Sunday of March (the EU's change to summer time), next year
    or later, so that the session is always in the future."""
    year = date.today().year + 1
    last_sunday = max(
        date(year, 3, day) for day in range(25, 32) if date(year, 3, day).weekday() == 6
    )
    return last_sunday + timedelta(days=1)


def paris_nine_am() -> datetime:
    return datetime.combine(day_after_spring_dst_change(), time(9, 0), tzinfo=PARIS)


@pytest.fixture
def paris_session():
    creator = CreatorFactory(email="host@example.com", timezone="Europe/Paris")
    return SessionFactory(
        creator=creator,
        title="Morning French",
        price=Decimal("0.00"),
        start_time=paris_nine_am(),
        duration_minutes=60,
        timezone="Europe/Paris",
        is_online=True,
        meeting_url="https://meet.example.com/french",
    )


# --- the user's time zone ------------------------------------------------------------------


def test_timezone_is_writable_and_shown(user):
    client = auth_client(user)
    response = client.patch(PROFILE_URL, {"timezone": "America/New_York"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["timezone"] == "America/New_York"
    assert client.get("/api/users/me/").json()["timezone"] == "America/New_York"
    user.refresh_from_db()
    assert user.timezone == "America/New_York"


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "../../etc/passwd", "", "x" * 65, 5, None])
def test_an_unknown_timezone_is_400_and_changes_nothing(user, bad):
    user.first_name = "Before"
    user.timezone = "Asia/Tokyo"
    user.save()
    response = auth_client(user).patch(
        PROFILE_URL, {"timezone": bad, "first_name": "After"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"timezone"}
    user.refresh_from_db()
    assert (user.timezone, user.first_name) == ("Asia/Tokyo", "Before")


def test_put_without_timezone_keeps_it(user):
    user.timezone = "Asia/Tokyo"
    user.save()
    response = auth_client(user).put(
        PROFILE_URL, {"first_name": "A", "last_name": "B", "bio": ""}, format="json"
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.timezone == "Asia/Tokyo"


def test_a_new_session_takes_the_creators_zone(creator):
    client = auth_client(creator)
    client.patch(PROFILE_URL, {"timezone": "Australia/Sydney"}, format="json")
    start = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    response = client.post(
        "/api/sessions/",
        {
            "title": "Surf theory",
            "price": "0.00",
            "duration_minutes": 60,
            "start_time": start.isoformat(),
            "capacity": 5,
            "location": "Bondi",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["timezone"] == "Australia/Sydney"
    assert response.json()["start_time"] == start.isoformat().replace("+00:00", "Z")


# --- e-mails in the recipient's zone -------------------------------------------------------


def test_confirmation_says_0900_cest_and_attaches_the_ics(
    paris_session, django_capture_on_commit_callbacks
):
    user = UserFactory(email="pat@example.com", first_name="Pat", last_name="Doe")
    user.timezone = "Europe/Paris"
    user.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(user).post("/api/bookings/", {"session": paris_session.pk})
    assert response.status_code == 201
    (message,) = [m for m in mail.outbox if m.to == ["pat@example.com"]]
    day = paris_session.start_time.astimezone(PARIS)
    when = f"{day:%A} {day.day} {day:%B %Y}, 09:00-10:00 CEST (Europe/Paris)"
    assert f"When: {when}" in message.body
    # HTML from the same context, with the same time and the next steps as links.
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert when in html
    assert '<a href="https://meet.example.com/french"' in html
    assert "What to do next" in html
    assert "Join online at the start time: https://meet.example.com/french" in message.body
    assert f"/api/calendar/{user.calendar_token}.ics" in message.body
    assert f"/bookings/{response.json()['id']}" in message.body
    # The .ics is attached, with the session's zone.
    ((filename, content, attached_type),) = message.attachments
    assert filename == f"booking-{response.json()['id']}.ics"
    assert attached_type.startswith("text/calendar")
    assert f"DTSTART;TZID=Europe/Paris:{day:%Y%m%d}T090000" in content
    # The creator hears about it in their own zone too.
    (to_creator,) = [m for m in mail.outbox if m.to == ["host@example.com"]]
    assert "09:00-10:00 CEST (Europe/Paris)" in to_creator.body


def test_the_same_session_in_new_york_time(paris_session, django_capture_on_commit_callbacks):
    user = UserFactory(email="ny@example.com", timezone="America/New_York")
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(user).post("/api/bookings/", {"session": paris_session.pk})
    (message,) = [m for m in mail.outbox if m.to == ["ny@example.com"]]
    # 09:00 CEST is 07:00 UTC is 03:00 in New York, already on summer time (EDT) by then.
    assert "03:00-04:00 EDT (America/New_York)" in message.body
    assert "CEST" not in message.body


def test_a_utc_recipient_reads_utc(paris_session, django_capture_on_commit_callbacks):
    user = UserFactory(email="utc@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(user).post("/api/bookings/", {"session": paris_session.pk})
    (message,) = [m for m in mail.outbox if m.to == ["utc@example.com"]]
    assert "07:00-08:00 UTC\n" in message.body


def test_a_paid_booking_states_the_free_cancellation_deadline_in_the_users_zone(
    paris_session, django_capture_on_commit_callbacks, settings
):
    settings.CANCELLATION_WINDOW_HOURS = 48
    user = UserFactory(email="paid@example.com", timezone="Europe/Paris")
    booking = BookingFactory(
        session=paris_session, user=user, payment_status="paid", amount=Decimal("20.00")
    )
    from backend.services import notifications

    with django_capture_on_commit_callbacks(execute=True):
        from django.db import transaction

        with transaction.atomic():
            notifications.notify_booking_confirmed(booking=booking)
    (message,) = mail.outbox
    deadline = (paris_session.start_time - timedelta(hours=48)).astimezone(PARIS)
    # 48 hours before 09:00 CEST is the Saturday, still winter time: 08:00 CET.
    assert f"until {deadline:%A} {deadline.day} {deadline:%B %Y}, 08:00 CET" in message.body


# --- the .ics --------------------------------------------------------------------------------


def ics_of(booking) -> tuple[str, Calendar]:
    response = auth_client(booking.user).get(f"/api/bookings/{booking.pk}/calendar.ics")
    assert response.status_code == 200
    raw = response.content.decode()
    return raw, Calendar.from_ical(response.content)


def test_ics_has_tzid_vtimezone_and_parses_back(paris_session):
    booking = BookingFactory(session=paris_session)
    raw, calendar = ics_of(booking)
    day = paris_session.start_time.astimezone(PARIS)
    assert f"DTSTART;TZID=Europe/Paris:{day:%Y%m%d}T090000\r\n" in raw
    assert f"DTEND;TZID=Europe/Paris:{day:%Y%m%d}T100000\r\n" in raw
    (vtimezone,) = calendar.walk("VTIMEZONE")
    assert vtimezone["TZID"] == "Europe/Paris"
    # Summer and winter rules both there (icalendar builds them from the zoneinfo database).
    assert {component.name for component in vtimezone.subcomponents} == {"STANDARD", "DAYLIGHT"}
    (event,) = calendar.walk("VEVENT")
    start = event.decoded("DTSTART")
    assert start == paris_nine_am()
    assert start.astimezone(UTC) == datetime.combine(day.date(), time(7, 0), tzinfo=UTC)
    assert event["UID"] == f"booking-{booking.pk}@sessions-marketplace"


def test_sequence_grows_when_time_or_place_changes_and_uid_stays(paris_session):
    booking = BookingFactory(session=paris_session)
    creator_client = auth_client(paris_session.creator)
    url = f"/api/sessions/{paris_session.pk}/"

    def sequence_and_uid() -> tuple[int, str]:
        (event,) = ics_of(booking)[1].walk("VEVENT")
        return int(str(event["SEQUENCE"])), str(event["UID"])

    first, uid = sequence_and_uid()
    assert creator_client.patch(url, {"title": "Renamed"}, format="json").status_code == 200
    assert sequence_and_uid() == (first, uid)  # a new title is not a new time or place

    new_start = (paris_session.start_time + timedelta(hours=2)).isoformat()
    assert creator_client.patch(url, {"start_time": new_start}, format="json").status_code == 200
    assert sequence_and_uid() == (first + 1, uid)
    patch = {"meeting_url": "https://meet.example.com/other"}
    assert creator_client.patch(url, patch, format="json").status_code == 200
    assert sequence_and_uid() == (first + 2, uid)
    assert creator_client.patch(url, {"duration_minutes": 90}, format="json").status_code == 200
    assert sequence_and_uid() == (first + 3, uid)
    session = Session.objects.get(pk=paris_session.pk)
    assert session.schedule_sequence == 3
    assert session.rescheduled_at is not None

    # Cancelling the booking grows it again: the same event, now STATUS:CANCELLED.
    assert auth_client(booking.user).post(f"/api/bookings/{booking.pk}/cancel/").status_code == 200
    booking.refresh_from_db()
    (event,) = ics_of(booking)[1].walk("VEVENT")
    assert (int(str(event["SEQUENCE"])), str(event["UID"]), event["STATUS"]) == (
        first + 4,
        uid,
        "CANCELLED",
    )


def test_a_utc_session_keeps_plain_utc_times_without_vtimezone():
    booking = BookingFactory(
        session=SessionFactory(start_time=datetime(2031, 5, 4, 16, 30, tzinfo=UTC))
    )
    raw, calendar = ics_of(booking)
    assert "DTSTART:20310504T163000Z\r\n" in raw
    assert calendar.walk("VTIMEZONE") == []


def test_users_default_to_utc():
    assert User.objects.create(username="fresh").timezone == "UTC"
