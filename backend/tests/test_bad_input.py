"""Bad input anywhere gets a JSON 4xx and changes nothing (issue: robustness)."""

import pytest
from rest_framework.test import APIClient

from backend.models import Booking, Session, User
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db

HUGE = 10**40
LONG = "x" * 100_000

BAD_BODIES = {
    "malformed json": '{"session": 1,',
    "nul byte": '{"notes": "a\\u0000b", "title": "a\\u0000b", "session": 1}',
    "huge integer": f'{{"session": {HUGE}, "seats": {HUGE}, "capacity": {HUGE}}}',
    "wrong types": '{"session": "one", "seats": [1], "price": {"a": 1}, "start_time": 5}',
    "very long strings": f'{{"title": "{LONG}", "notes": "{LONG}", "bio": "{LONG}"}}',
    "array body": "[1, 2, 3]",
    "not an object": '"hello"',
}


def snapshot():
    return (
        list(Booking.objects.order_by("pk").values()),
        list(Session.objects.order_by("pk").values()),
        list(User.objects.order_by("pk").values("pk", "first_name", "bio", "role")),
    )


@pytest.fixture
def world():
    creator = CreatorFactory()
    user = UserFactory()
    session = SessionFactory(creator=creator, price=0)
    booking = BookingFactory(session=SessionFactory(creator=creator), user=user)
    return {"creator": creator, "user": user, "session": session, "booking": booking}


def targets(world):
    s, b = world["session"].pk, world["booking"].pk
    return [
        ("user", "post", "/api/bookings/"),
        ("user", "patch", f"/api/bookings/{b}/"),
        ("user", "put", f"/api/bookings/{b}/"),
        ("user", "post", "/api/payment/create-intent/"),
        ("creator", "post", "/api/sessions/"),
        ("creator", "patch", f"/api/sessions/{s}/"),
        ("creator", "put", f"/api/sessions/{s}/"),
        (None, "post", "/api/auth/token/"),
        (None, "post", "/api/auth/token/refresh/"),
        (None, "post", "/api/auth/oauth/login/"),
    ]


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_bad_bodies_are_json_4xx_and_change_nothing(world, kind, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_unused"  # reach validation, not "not configured"
    before = snapshot()
    anonymous = APIClient()
    for role, method, url in targets(world):
        client = auth_client(world[role]) if role else anonymous
        response = getattr(client, method)(
            url, data=BAD_BODIES[kind], content_type="application/json"
        )
        assert 400 <= response.status_code < 500, (kind, method, url, response.status_code)
        assert response["Content-Type"].startswith("application/json"), (kind, url)
        assert isinstance(response.json(), dict), (kind, url)
    assert snapshot() == before


@pytest.mark.parametrize(
    "field, value",
    [("status", "confirmed"), ("payment_status", "paid"), ("amount", "0.01"), ("user", 1)],
)
def test_read_only_booking_fields_are_never_written(world, field, value):
    booking = world["booking"]
    before = snapshot()
    client = auth_client(world["user"])
    response = client.patch(f"/api/bookings/{booking.pk}/", {field: value, "notes": "hi"})
    assert response.status_code in (200, 400)
    booking.refresh_from_db()
    assert (
        getattr(booking, field if field != "user" else "user_id")
        == (dict(before[0][0])[field if field != "user" else "user_id"])
    )


@pytest.mark.parametrize(
    "url",
    [
        "/api/sessions/99999999999999999999999999/",
        "/api/bookings/99999999999999999999999999/",
        "/api/sessions/-1/",
        "/api/sessions/abc/",
        "/api/sessions/?page=99999999999999999999",
        "/api/sessions/?page_size=-5&min_price=abc",
        "/api/sessions/?start_after=not-a-date",
        "/api/sessions/?search=%00",
    ],
)
def test_bad_urls_and_query_strings_are_json_4xx(world, url):
    response = auth_client(world["user"]).get(url)
    assert 400 <= response.status_code < 500, (url, response.status_code)
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "body",
    [
        {"bio": "a\u0000b"},
        {"bio": "x" * 100_000},
        {"first_name": ["a"]},
        {"last_name": {"a": 1}},
        {"first_name": "y" * 1000},
    ],
)
def test_bad_profile_updates_are_400_and_change_nothing(world, body):
    before = snapshot()
    response = auth_client(world["user"]).patch("/api/users/update_profile/", body)
    assert response.status_code == 400
    assert snapshot() == before
