"""The catalog list's page total from the shared cache (catalog_cache.cached_total): counted
once per query until the catalog changes, for every reader; the rows are always fresh.

Writes run inside `django_capture_on_commit_callbacks(execute=True)`: the version token that
retires a total is replaced when the write commits."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from backend.models import Session
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db
NO_CACHE = {"HTTP_CACHE_CONTROL": "no-cache"}  # past the page cache: the total is what is left


@pytest.fixture
def listed(catalog_cache_on):
    return [SessionFactory(capacity=2) for _ in range(3)]


def count_queries(queries) -> int:
    return sum("COUNT(" in query["sql"].upper() for query in queries.captured_queries)


def test_the_total_is_counted_once_per_query(api_client, listed, django_assert_num_queries):
    with django_assert_num_queries(2) as first:  # the total and the page
        assert api_client.get("/api/sessions/", **NO_CACHE).json()["count"] == 3
    assert count_queries(first) == 1
    with django_assert_num_queries(1) as again:  # the page only
        answer = api_client.get("/api/sessions/?page_size=2&page=2", **NO_CACHE).json()
    assert count_queries(again) == 0
    assert answer["count"] == 3 and len(answer["results"]) == 1
    # Another query has its own total; a signed-in reader shares them.
    assert api_client.get("/api/sessions/?available=true", **NO_CACHE).json()["count"] == 3
    client = auth_client(UserFactory())
    with django_assert_num_queries(2):  # the user and the page: no count
        assert client.get("/api/sessions/").json()["count"] == 3


def test_a_change_retires_the_total_when_it_commits(
    api_client, listed, django_capture_on_commit_callbacks
):
    def total(path="/api/sessions/"):
        return api_client.get(path, **NO_CACHE).json()["count"]

    assert total() == 3
    assert total("/api/sessions/?available=true") == 3
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(listed[0].creator).post(
            "/api/sessions/",
            {
                "title": "New",
                "description": "A new one.",
                "category": "yoga",
                "price": "10.00",
                "currency": "USD",
                "duration_minutes": 60,
                "start_time": (timezone.now() + timedelta(days=3)).isoformat(),
                "capacity": 1,
                "is_online": True,
                "meeting_url": "https://meet.example.com/x",
                "status": "published",
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    assert total() == 4
    # A seat change retires it too: the session sold out leaves `available=true`.
    with django_capture_on_commit_callbacks(execute=True):
        answer = auth_client(UserFactory()).post(
            "/api/bookings/", {"session": response.json()["id"], "seats": 1}, format="json"
        )
    assert answer.status_code == 201, answer.content
    assert total("/api/sessions/?available=true") == 3


def test_a_write_that_never_commits_leaves_the_total_alone_and_off_means_counted(
    api_client, listed, settings, django_assert_num_queries
):
    assert api_client.get("/api/sessions/", **NO_CACHE).json()["count"] == 3
    Session.objects.filter(pk=listed[0].pk).update(status="draft")  # no token replaced
    assert api_client.get("/api/sessions/", **NO_CACHE).json()["count"] == 3  # until the TTL
    settings.CATALOG_CACHE_SECONDS = 0
    with django_assert_num_queries(2):
        assert api_client.get("/api/sessions/").json()["count"] == 2


def test_a_cache_that_fails_counts_uncached(api_client, listed, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get_many", down)
    BookingFactory(session=listed[0], seats=2)
    answer = api_client.get("/api/sessions/?available=true", **NO_CACHE)
    assert answer.status_code == 200
    assert answer.json()["count"] == 2
