"""GET /api/calendar/<token>.ics: a per-user secret URL, no JWT, exactly the owner's confirmed
bookings (and a creator's published sessions) from 30 days ago on, nothing of anyone else;
rotating the token makes the old URL a 404."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from icalendar import Calendar
from rest_framework.test import APIClient

from backend.models import Booking, Session
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db


def feed_path(user) -> str:
    return f"/api/calendar/{user.calendar_token}.ics"


def fetch(path: str, **headers):
    return APIClient().get(path, **headers)


def uids(response) -> set[str]:
    assert response.status_code == 200, response.content
    calendar = Calendar.from_ical(response.content)
    return {str(event["UID"]) for event in calendar.walk("VEVENT")}


@pytest.fixture
def world():
    now = timezone.now()
    creator = CreatorFactory()
    other_creator = CreatorFactory()
    user = UserFactory()
    stranger = UserFactory()

    upcoming = SessionFactory(creator=creator, title="Upcoming", start_time=now + timedelta(days=2))
    recent = SessionFactory(creator=creator, title="Recent", start_time=now - timedelta(days=29))
    old = SessionFactory(creator=creator, title="Old", start_time=now - timedelta(days=31))
    draft = SessionFactory(creator=creator, title="Draft", status=Session.Status.DRAFT)
    cancelled = SessionFactory(creator=creator, title="Gone", status=Session.Status.CANCELLED)
    elsewhere = SessionFactory(creator=other_creator, title="Stranger's class")

    bookings = {
        "upcoming": BookingFactory(session=upcoming, user=user),
        "recent": BookingFactory(session=recent, user=user),
        "old": BookingFactory(session=old, user=user),
        "pending": BookingFactory(
            session=elsewhere, user=user, status="pending", payment_status="unpaid"
        ),
        "cancelled": BookingFactory(
            session=SessionFactory(creator=other_creator), user=user, status="cancelled"
        ),
        "strangers": BookingFactory(session=upcoming, user=stranger),
        "strangers_elsewhere": BookingFactory(session=elsewhere, user=stranger),
    }
    # The creator booked someone else's session too: creators are attendees as well.
    bookings["creator_as_attendee"] = BookingFactory(session=elsewhere, user=creator)
    return {
        "creator": creator,
        "user": user,
        "stranger": stranger,
        "sessions": {
            "upcoming": upcoming,
            "recent": recent,
            "old": old,
            "draft": draft,
            "cancelled": cancelled,
            "elsewhere": elsewhere,
        },
        "bookings": bookings,
    }


def test_a_user_feed_lists_exactly_their_confirmed_bookings(world):
    b = world["bookings"]
    response = fetch(feed_path(world["user"]))
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert uids(response) == {
        f"booking-{b['upcoming'].pk}@sessions-marketplace",
        f"booking-{b['recent'].pk}@sessions-marketplace",
    }
    raw = response.content.decode()
    assert "Stranger's class" not in raw  # the pending booking's session is not there
    assert "X-WR-CALNAME:Sessions Marketplace" in raw


def test_a_creator_feed_adds_their_published_sessions_only(world):
    s, b = world["sessions"], world["bookings"]
    response = fetch(feed_path(world["creator"]))
    assert uids(response) == {
        f"session-{s['upcoming'].pk}@sessions-marketplace",
        f"session-{s['recent'].pk}@sessions-marketplace",
        f"booking-{b['creator_as_attendee'].pk}@sessions-marketplace",
    }
    calendar = Calendar.from_ical(response.content)
    upcoming = next(
        e
        for e in calendar.walk("VEVENT")
        if str(e["UID"]).startswith(f"session-{s['upcoming'].pk}@")
    )
    # Two confirmed bookings of it (the user's and the stranger's), but no names.
    assert "2 of 10 seats booked" in str(upcoming["DESCRIPTION"])
    assert world["stranger"].username not in response.content.decode()


def test_the_feed_leaks_nothing_of_other_users(world):
    mine = fetch(feed_path(world["user"])).content.decode()
    theirs = fetch(feed_path(world["stranger"])).content.decode()
    b = world["bookings"]
    assert f"booking-{b['strangers'].pk}@" not in mine
    assert f"booking-{b['upcoming'].pk}@" not in theirs
    assert world["stranger"].calendar_token not in mine


def test_no_jwt_needed_and_a_bearer_header_changes_nothing(world):
    path = feed_path(world["user"])
    anonymous = fetch(path)
    as_stranger = auth_client(world["stranger"]).get(path)
    broken_token = fetch(path, HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert uids(anonymous) == uids(as_stranger) == uids(broken_token)


def test_rotation_404s_the_old_url_and_the_new_one_works(world):
    user = world["user"]
    old_path = feed_path(user)
    client = auth_client(user)
    me = client.get("/api/users/me/").json()
    assert me["calendar_feed_url"] == f"http://testserver{old_path}"

    response = client.post("/api/users/calendar_token/rotate/")
    assert response.status_code == 200
    new_url = response.json()["calendar_feed_url"]
    user.refresh_from_db()
    assert new_url == f"http://testserver{feed_path(user)}"
    assert new_url != me["calendar_feed_url"]
    assert client.get("/api/users/me/").json()["calendar_feed_url"] == new_url

    gone = fetch(old_path)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"
    assert len(uids(fetch(feed_path(user)))) == 2


def test_rotation_needs_a_sign_in(world):
    token = world["user"].calendar_token
    response = APIClient().post("/api/users/calendar_token/rotate/")
    assert response.status_code == 401
    world["user"].refresh_from_db()
    assert world["user"].calendar_token == token


@pytest.mark.parametrize(
    "path",
    [
        "/api/calendar/" + "A" * 43 + ".ics",  # well-formed, unknown
        "/api/calendar/short.ics",
        "/api/calendar/../users/me.ics",
    ],
)
def test_unknown_tokens_are_a_json_404(world, path):
    response = fetch(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_deactivated_account_has_no_feed(world):
    user = world["user"]
    user.is_active = False
    user.save()
    assert fetch(feed_path(user)).status_code == 404


def test_tokens_are_long_random_and_unique():
    tokens = {UserFactory().calendar_token for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(token) == 43 for token in tokens)


def test_cache_headers_and_conditional_get(world):
    path = feed_path(world["user"])
    first = fetch(path)
    assert first["Cache-Control"] == "private, max-age=300"
    etag = first["ETag"]
    assert fetch(path)["ETag"] == etag  # unchanged data, same bytes
    unchanged = fetch(path, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    booking = world["bookings"]["upcoming"]
    response = auth_client(world["user"]).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200
    changed = fetch(path, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert f"booking-{booking.pk}@" not in changed.content.decode()


def test_feed_events_carry_the_sessions_zone(world):
    session = world["sessions"]["upcoming"]
    session.timezone = "America/Chicago"
    session.save()
    response = fetch(feed_path(world["user"]))
    raw = response.content.decode()
    local = session.start_time.astimezone(ZoneInfo("America/Chicago"))
    assert f"DTSTART;TZID=America/Chicago:{local:%Y%m%dT%H%M%S}" in raw
    (vtimezone,) = Calendar.from_ical(response.content).walk("VTIMEZONE")
    assert vtimezone["TZID"] == "America/Chicago"


@pytest.mark.parametrize("extra", [0, 25])
def test_the_feed_is_a_fixed_number_of_queries(world, django_assert_num_queries, extra):
    creator = world["creator"]
    for _ in range(extra):
        session = SessionFactory(creator=creator, start_time=timezone.now() + timedelta(days=5))
        BookingFactory(session=session)
        BookingFactory(session=world["sessions"]["elsewhere"], user=UserFactory())
        BookingFactory(session=SessionFactory(), user=creator)
    # The owner by token, their bookings, their sessions (a user who is no creator: 2).
    with django_assert_num_queries(3):
        response = fetch(feed_path(creator))
    assert len(uids(response)) == 3 + 2 * extra
    with django_assert_num_queries(2):
        fetch(feed_path(world["user"]))
    assert Booking.objects.filter(user=creator).count() == 1 + extra
