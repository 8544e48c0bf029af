"""Who may do what on /api/sessions/: every actor times every endpoint.

A denial answers 401 (anonymous), 403 (not a creator) or 404 (someone else's session), and
changes nothing.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backend.models import Booking, Session
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db

ACTORS = ["anonymous", "user", "creator", "other_creator", "staff"]


@pytest.fixture
def world(creator):
    session = SessionFactory(creator=creator, title="Owned session")
    draft = SessionFactory(creator=creator, title="Owned draft", status=Session.Status.DRAFT)
    booking = BookingFactory(session=session)
    actors = {
        "anonymous": None,
        "user": UserFactory(),
        "creator": creator,
        "other_creator": CreatorFactory(),
        "staff": UserFactory(is_staff=True),
    }
    return {"session": session, "draft": draft, "booking": booking, "actors": actors}


def client_for(world, actor: str) -> APIClient:
    user = world["actors"][actor]
    return APIClient() if user is None else auth_client(user)


def new_session_payload() -> dict:
    return {
        "title": "Brand new session",
        "price": "10.00",
        "duration_minutes": 60,
        "start_time": (timezone.now() + timedelta(days=3)).isoformat(),
        "capacity": 5,
        "is_online": True,
    }


EXPECTED = {
    # action: {actor: status}
    "list": dict.fromkeys(ACTORS, 200),
    "detail": dict.fromkeys(ACTORS, 200),
    "detail_draft": {
        "anonymous": 404,
        "user": 404,
        "creator": 200,
        "other_creator": 404,
        "staff": 404,
    },
    "create": {"anonymous": 401, "user": 403, "creator": 201, "other_creator": 201, "staff": 403},
    "update": {"anonymous": 401, "user": 403, "creator": 200, "other_creator": 404, "staff": 403},
    "delete": {"anonymous": 401, "user": 403, "creator": 200, "other_creator": 404, "staff": 403},
    "delete_unbooked": {
        "anonymous": 401,
        "user": 403,
        "creator": 204,
        "other_creator": 404,
        "staff": 403,
    },
    "my_sessions": {
        "anonymous": 401,
        "user": 403,
        "creator": 200,
        "other_creator": 200,
        "staff": 403,
    },
    "bookings": {
        "anonymous": 401,
        "user": 403,
        "creator": 200,
        "other_creator": 404,
        "staff": 403,
    },
}

CASES = [(action, actor) for action in EXPECTED for actor in ACTORS]


def snapshot() -> list:
    return [
        list(Session.objects.order_by("id").values_list("id", "title", "status", "capacity")),
        list(Booking.objects.order_by("id").values_list("id", "status")),
    ]


@pytest.mark.parametrize(("action", "actor"), CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_permission_matrix(world, action, actor):
    client = client_for(world, actor)
    session, draft = world["session"], world["draft"]
    before = snapshot()
    if action == "list":
        response = client.get("/api/sessions/")
    elif action == "detail":
        response = client.get(f"/api/sessions/{session.pk}/")
    elif action == "detail_draft":
        response = client.get(f"/api/sessions/{draft.pk}/")
    elif action == "create":
        response = client.post("/api/sessions/", new_session_payload())
    elif action == "update":
        response = client.patch(f"/api/sessions/{session.pk}/", {"title": "Renamed"})
    elif action == "delete":
        response = client.delete(f"/api/sessions/{session.pk}/")
    elif action == "delete_unbooked":
        response = client.delete(f"/api/sessions/{draft.pk}/")
    elif action == "my_sessions":
        response = client.get("/api/sessions/my_sessions/")
    else:
        response = client.get(f"/api/sessions/{session.pk}/bookings/")

    expected = EXPECTED[action][actor]
    assert response.status_code == expected, response.content
    if expected != 204:
        assert response["Content-Type"].startswith("application/json")
    if expected >= 400:
        assert "detail" in response.json()
        assert snapshot() == before


def test_list_shows_published_only_to_everyone(world):
    for actor in ACTORS:
        results = client_for(world, actor).get("/api/sessions/").json()["results"]
        titles = [session["title"] for session in results]
        assert titles == ["Owned session"], actor


def test_my_sessions_lists_only_the_callers_sessions(world):
    own = client_for(world, "creator").get("/api/sessions/my_sessions/").json()
    assert sorted(s["title"] for s in own["results"]) == ["Owned draft", "Owned session"]
    other = client_for(world, "other_creator").get("/api/sessions/my_sessions/").json()
    assert other["count"] == 0


def test_creator_sees_attendees_of_own_session(world):
    booking = world["booking"]
    response = client_for(world, "creator").get(f"/api/sessions/{world['session'].pk}/bookings/")
    assert response.json()["results"] == [
        {
            "id": booking.pk,
            "user": {"id": booking.user.pk, "username": booking.user.username},
            "name": booking.user.get_full_name(),
            "email": booking.user.email,
            "seats": 1,
            "status": "confirmed",
            "payment_status": "not_required",
            "amount": "25.00",
            "currency": "USD",
            "notes": "",
            "created_at": booking.created_at.isoformat().replace("+00:00", "Z"),
            "confirmed_at": None,
            "cancelled_at": None,
        }
    ]


def test_update_by_creator_changes_only_their_session(world):
    response = client_for(world, "creator").patch(
        f"/api/sessions/{world['session'].pk}/", {"title": "Renamed"}
    )
    assert response.json()["title"] == "Renamed"
    world["session"].refresh_from_db()
    assert world["session"].title == "Renamed"


def test_swagger_documents_the_session_endpoints(api_client):
    schema = api_client.get("/swagger.json").json()
    paths = schema["paths"]
    assert set(paths["/sessions/"]) >= {"get", "post"}
    assert set(paths["/sessions/{id}/"]) >= {"get", "put", "patch", "delete"}
    list_params = {p["name"] for p in paths["/sessions/"]["get"]["parameters"]}
    assert list_params >= {
        "search", "category", "creator", "min_price", "max_price", "start_after",
        "start_before", "is_online", "available", "ordering", "page", "page_size",
    }  # fmt: skip
    attendees = paths["/sessions/{id}/bookings/"]["get"]["responses"]["200"]["schema"]
    assert attendees == {"$ref": "#/definitions/SessionAttendeePage"}
    session_fields = set(schema["definitions"]["Session"]["properties"])
    assert "seats_left" in session_fields
    assert "meeting_url" in session_fields
