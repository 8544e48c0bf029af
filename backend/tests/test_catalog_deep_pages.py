"""Deep catalog pages (DeepPagePaginator) return exactly what a plain OFFSET slice returns.

The paginator switches to "ids first, then annotate those rows" past DEFER_FROM_OFFSET; here
the threshold is moved so the same pages are fetched both ways and compared whole, across the
orderings, search and the seats filter that the rewritten query must preserve.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.pagination import DeepPagePaginator
from backend.selectors import compiled
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory

pytestmark = pytest.mark.django_db

QUERIES = [
    "",
    "&ordering=-price",
    "&ordering=price",
    "&search=python",
    "&available=true",
    "&category=coding&ordering=-start_time",
]


@pytest.fixture
def catalog():
    creator = CreatorFactory(username="pythonista")
    start = timezone.now() + timedelta(days=2)
    sessions = []
    for index in range(13):
        sessions.append(
            SessionFactory(
                creator=creator if index % 4 == 0 else CreatorFactory(),
                title=f"Python {index}" if index % 3 == 0 else f"Pottery {index}",
                category="coding" if index % 2 else "art",
                # Ties on start time and price: only the id tiebreak orders them.
                start_time=start + timedelta(hours=index // 3),
                price=Decimal(10 * (index % 4)),
                capacity=1 + index % 2,
            )
        )
    for session in sessions[::3]:
        BookingFactory(session=session)
    SessionFactory(status="draft", title="Python draft")
    return sessions


def fetch_all_pages(api_client, query, django_assert_max_num_queries):
    pages = []
    for page in (1, 2, 3):
        with django_assert_max_num_queries(2):
            response = api_client.get(f"/api/sessions/?page_size=5&page={page}{query}")
        if response.status_code == 404:
            break
        assert response.status_code == 200
        pages.append(response.json())
    return pages


@pytest.mark.parametrize("query", QUERIES)
def test_deferred_pages_equal_plain_pages(
    api_client, catalog, query, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(DeepPagePaginator, "DEFER_FROM_OFFSET", 10**9)
    compiled._shapes.clear()  # shapes compiled under the other threshold
    plain = fetch_all_pages(api_client, query, django_assert_max_num_queries)
    monkeypatch.setattr(DeepPagePaginator, "DEFER_FROM_OFFSET", 0)
    compiled._shapes.clear()  # shapes compiled under the other threshold
    deferred = fetch_all_pages(api_client, query, django_assert_max_num_queries)

    assert deferred == plain
    assert plain, query
    ids = [row["id"] for page in plain for row in page["results"]]
    assert len(ids) == len(set(ids)) == plain[0]["count"]


def test_deferred_page_sees_the_same_seats_left(api_client, catalog, monkeypatch):
    monkeypatch.setattr(DeepPagePaginator, "DEFER_FROM_OFFSET", 0)
    compiled._shapes.clear()  # shapes compiled under the other threshold
    response = api_client.get("/api/sessions/?page_size=5&page=1")
    rows = {row["id"]: row["seats_left"] for row in response.json()["results"]}
    booked = catalog[0]  # capacity 1, one confirmed booking
    assert rows[booked.pk] == 0
    assert rows[catalog[1].pk] == 2
