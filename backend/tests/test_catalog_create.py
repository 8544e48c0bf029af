"""Creating sessions through the API: defaults, UTC times, validation, odd JSON."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.models import Session
from backend.tests.support.catalog import future, payload

pytestmark = pytest.mark.django_db


def utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_creator_creates_a_session(creator, creator_client):
    start = future()
    response = creator_client.post("/api/sessions/", payload(start_time=start.isoformat()))
    assert response.status_code == 201, response.content
    body = response.json()
    session = Session.objects.get()
    assert body == {
        "id": session.pk,
        "creator": {
            "id": creator.pk,
            "username": creator.username,
            "first_name": creator.first_name,
            "last_name": creator.last_name,
            "avatar": None,
            "rating": {"average": None, "count": 0},
        },
        "title": "Intro to pottery",
        "description": "Hands in clay.",
        "category": "crafts",
        "price": "25.50",
        "currency": "EUR",
        "duration_minutes": 90,
        "start_time": utc(start),
        "end_time": utc(start + timedelta(minutes=90)),
        "capacity": 12,
        "seats_left": 12,
        "location": "Studio 4, Lisbon",
        "is_online": False,
        "meeting_url": None,
        "image": None,
        "status": "published",
        "timezone": "UTC",
        "series": None,
        "series_position": None,
        # No policy of its own: the platform default (CANCELLATION_WINDOW_HOURS, 100 %).
        "refund_policy": [{"hours_before": 24, "refund_percent": 100}],
        "min_attendees": None,
        "decision_at": None,
        "committed_seats": 0,
        "seats_to_go": 0,
        "decision": "",
        "cancel_reason": "",
        "created_at": utc(session.created_at),
        "updated_at": utc(session.updated_at),
    }
    assert session.creator == creator
    assert session.price == Decimal("25.50")


def test_times_with_any_offset_are_returned_in_utc(creator_client):
    response = creator_client.post(
        "/api/sessions/", payload(start_time="2027-03-01T10:30:00+05:30")
    )
    assert response.status_code == 201, response.content
    assert response.json()["start_time"] == "2027-03-01T05:00:00Z"
    assert response.json()["end_time"] == "2027-03-01T06:30:00Z"


def test_new_session_defaults_to_draft_and_usd(creator_client):
    response = creator_client.post(
        "/api/sessions/",
        payload(status=None, currency=None, is_online=True, location=None, meeting_url=None),
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "draft"
    assert response.json()["currency"] == "USD"


LONG = "x" * 201


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "ab"}, "title"),
        ({"title": "   ab   "}, "title"),
        ({"title": LONG}, "title"),
        ({"title": None}, "title"),
        ({"start_time": "2020-01-01T10:00:00Z"}, "start_time"),
        ({"start_time": "2027-01-01T10:00:00"}, "start_time"),
        ({"start_time": "next tuesday"}, "start_time"),
        ({"start_time": "2027-02-30T10:00:00Z"}, "start_time"),
        ({"start_time": "9999-12-31T23:59:59Z"}, "start_time"),
        ({"start_time": 1700000000}, "start_time"),
        ({"duration_minutes": 4}, "duration_minutes"),
        ({"duration_minutes": 1441}, "duration_minutes"),
        ({"duration_minutes": "sixty"}, "duration_minutes"),
        ({"price": "-1.00"}, "price"),
        ({"price": "1.234"}, "price"),
        ({"price": "99999999999"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "Infinity"}, "price"),
        ({"price": "1e400"}, "price"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "dollars"}, "currency"),
        ({"currency": "JPY", "price": "18.50"}, "price"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": 10001}, "capacity"),
        ({"capacity": 10**30}, "capacity"),
        ({"meeting_url": "https://meet.example.com/x"}, "meeting_url"),
        ({"location": ""}, "location"),
        ({"is_online": True, "meeting_url": "javascript:alert(1)"}, "meeting_url"),
        ({"is_online": True, "meeting_url": "ftp://files.example.com/"}, "meeting_url"),
        ({"status": "cancelled"}, "status"),
        ({"status": "archived"}, "status"),
        ({"description": "d" * 10001}, "description"),
        ({"category": "c" * 51}, "category"),
        ({"title": "nul\x00byte"}, "title"),
    ],
)
def test_invalid_session_is_400_and_creates_nothing(creator_client, overrides, field):
    response = creator_client.post("/api/sessions/", payload(**overrides))
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert Session.objects.count() == 0


def test_online_session_with_meeting_url_is_valid_without_location(creator_client):
    response = creator_client.post(
        "/api/sessions/",
        payload(is_online=True, location=None, meeting_url="https://meet.example.com/abc"),
    )
    assert response.status_code == 201, response.content
    assert response.json()["meeting_url"] == "https://meet.example.com/abc"


def test_malformed_json_is_400(creator_client):
    response = creator_client.post("/api/sessions/", data="{oops", content_type="application/json")
    assert response.status_code == 400
    assert Session.objects.count() == 0


@pytest.mark.parametrize(
    "raw",
    [
        '"price": 1e400',
        '"price": -0.5',
        '"capacity": 1e400',
        '"capacity": 12.5',
        '"duration_minutes": 99999999999999999999999999',
        '"start_time": null',
        '"is_online": "perhaps"',
        '"title": ["a", "list"]',
        '"title": {"an": "object"}',
    ],
)
def test_odd_json_values_are_400(creator_client, raw):
    response = post_raw_json(creator_client, raw)
    assert response.status_code == 400, response.content
    assert Session.objects.count() == 0


def post_raw_json(client, raw: str):
    """Posts a valid payload as hand-written JSON, with `raw` replacing one of its fields."""
    fields = [raw] + [
        f'"{key}": {json.dumps(value)}' for key, value in payload().items() if f'"{key}"' not in raw
    ]
    body = "{" + ", ".join(fields) + "}"
    return client.post("/api/sessions/", data=body, content_type="application/json")


def test_raw_json_control_is_valid(creator_client):
    # The same builder with a sane value is accepted, so the 400s above are about the value.
    assert post_raw_json(creator_client, '"capacity": 12').status_code == 201


def test_a_list_instead_of_an_object_is_400(creator_client):
    response = creator_client.post("/api/sessions/", data=[payload()], format="json")
    assert response.status_code == 400
    assert Session.objects.count() == 0
