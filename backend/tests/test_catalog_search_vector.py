"""The stored search documents (PostgreSQL only): sessions' (migration 0012_catalog_search_vector)
and creators' names (0015_creator_name_search_vector)."""

import pytest
from django.db import connection

from backend.models import Session, User
from backend.selectors.catalog import (
    CREATOR_NAME_VECTOR_TEMPLATE,
    NAME_SEARCH_CONFIG,
    SESSION_SEARCH_VECTOR_TEMPLATE,
    CreatorNameVector,
)
from backend.tests.factories import CreatorFactory, SessionFactory, UserFactory
from backend.tests.support.clients import auth_client

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def stored_matches_the_expression() -> list[bool]:
    expression = SESSION_SEARCH_VECTOR_TEMPLATE.format(
        title="title", description="description", category="category"
    )
    with connection.cursor() as cursor:
        # Our own constant expression, no input in it.
        cursor.execute(f"SELECT search_vector = {expression} FROM sessions ORDER BY id")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def searched(client, term: str) -> list[str]:
    return [s["title"] for s in client.get(f"/api/sessions/?search={term}").json()["results"]]


def test_the_stored_vector_is_the_documented_expression_and_follows_edits(api_client):
    session = SessionFactory(title="Pottery wheel", description="Clay and glaze.", category="art")
    Session.objects.bulk_create(
        [Session(**{**_fields(session), "title": "Bulk pottery", "description": "Stoneware."})]
    )
    assert stored_matches_the_expression() == [True, True]
    assert searched(api_client, "glaze") == ["Pottery wheel"]

    # An edit through the API: PostgreSQL recomputes the column, no code of ours does.
    response = auth_client(session.creator).patch(
        f"/api/sessions/{session.pk}/", {"title": "Watercolour basics"}, format="json"
    )
    assert response.status_code == 200
    assert searched(api_client, "watercolour") == ["Watercolour basics"]
    assert searched(api_client, "pottery") == ["Bulk pottery"]
    assert stored_matches_the_expression() == [True, True]


def _fields(session: Session) -> dict:
    names = ("creator", "description", "category", "price", "currency", "duration_minutes")
    more = ("start_time", "capacity", "location", "is_online", "meeting_url", "status")
    return {name: getattr(session, name) for name in (*names, *more)}


def stored_names_match_the_expression() -> list[bool]:
    expression = CREATOR_NAME_VECTOR_TEMPLATE.format(
        username="username", first_name="first_name", last_name="last_name"
    )
    with connection.cursor() as cursor:
        # Our own constant expression, no input in it.
        cursor.execute(f"SELECT name_search_vector = {expression} FROM users ORDER BY id")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def test_the_stored_names_are_the_documented_expression_and_follow_renames(api_client):
    creator = CreatorFactory(username="hana", first_name="Hana", last_name="Sato")
    UserFactory(username="jon", first_name="", last_name="Lind")
    User.objects.bulk_create([User(username="chen", first_name="Chen", role="creator")])
    SessionFactory(creator=creator, title="Ink drawing", description="Brushes.")
    assert stored_names_match_the_expression() == [True, True, True]
    assert searched(api_client, "sato") == ["Ink drawing"]

    response = auth_client(creator).patch(
        "/api/users/update_profile/", {"first_name": "Haruka"}, format="json"
    )
    assert response.status_code == 200
    assert stored_names_match_the_expression() == [True, True, True]
    assert searched(api_client, "haruka") == ["Ink drawing"]
    assert searched(api_client, "hana") == ["Ink drawing"]  # still the username
    assert searched(api_client, "hana sato") == ["Ink drawing"]
    assert searched(api_client, "haruka lind") == []


def test_creator_name_search_uses_the_gin_index():
    """The query names the indexed column and the index's condition (creators only), so the
    planner can use the partial index. (With a handful of rows it would rather scan;
    forbidding that shows whether it could.)"""
    from django.contrib.postgres.search import SearchQuery

    CreatorFactory(username="emeka", first_name="Emeka", last_name="Okafor")
    UserFactory(username="okafor_fan", first_name="Okafor")
    query = SearchQuery("okafor", config=NAME_SEARCH_CONFIG, search_type="websearch")
    creators = (
        User.objects.filter(role=User.Role.CREATOR)
        .alias(names=CreatorNameVector())
        .filter(names=query)
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = creators.explain()
    assert "user_name_search_gin_idx" in plan
    assert list(creators.values_list("username", flat=True)) == ["emeka"]
