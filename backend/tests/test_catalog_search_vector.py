"""The stored search document (migration 0012_catalog_search_vector, PostgreSQL only)."""

import pytest
from django.db import connection

from backend.models import Session
from backend.selectors.catalog import SESSION_SEARCH_VECTOR_TEMPLATE
from backend.tests.factories import SessionFactory
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
