"""`creator.rating` in the catalog: values, `ordering=-rating`, and unchanged query budgets."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from backend.models import CreatorRating, Session, User
from backend.pagination import DeepPagePaginator
from backend.selectors import catalog as catalog_selectors
from backend.selectors import compiled
from backend.serializers.catalog import MySessionSerializer, SessionSerializer
from backend.services import reviews as services
from backend.tests.factories import CreatorFactory, SessionFactory, UserFactory
from backend.tests.reviews_support import attended_booking, review_of
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db


def count_queries(client, url: str) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries), response.json()


def rated(ratings: list[int], **session_fields) -> tuple[User, Session]:
    """A creator reviewed with `ratings` (on a past session) and one upcoming session."""
    creator = CreatorFactory.create()
    for rating in ratings:
        review_of(attended_booking(creator=creator), rating)
    return creator, SessionFactory.create(creator=creator, **session_fields)


def test_catalog_entries_and_detail_carry_the_creators_rating(api_client):
    creator, session = rated([5, 4, 4])
    _, unrated_session = rated([])

    entries = {row["id"]: row for row in api_client.get("/api/sessions/").json()["results"]}

    assert entries[session.pk]["creator"]["rating"] == {"average": 4.33, "count": 3}
    assert entries[unrated_session.pk]["creator"]["rating"] == {"average": None, "count": 0}
    detail = api_client.get(f"/api/sessions/{session.pk}/").json()
    assert detail["creator"] == {
        "id": creator.pk,
        "username": creator.username,
        "first_name": creator.first_name,
        "last_name": creator.last_name,
        "avatar": None,
        "rating": {"average": 4.33, "count": 3},
    }
    # A later review shows at once (the aggregate is written with the review).
    review_of(attended_booking(creator=creator), 1)
    updated = api_client.get(f"/api/sessions/{session.pk}/").json()["creator"]["rating"]
    assert updated == {"average": 3.5, "count": 4}


def test_catalog_ordering_by_rating_unrated_last_ties_by_id(api_client):
    start = timezone.now() + timedelta(days=3)
    _, good = rated([4], start_time=start)
    _, best = rated([5, 5], start_time=start + timedelta(hours=2))
    _, unrated = rated([], start_time=start - timedelta(hours=1))
    tie_creator, tie = rated([5, 3], start_time=start + timedelta(hours=5))
    tie_twin = SessionFactory(creator=tie_creator, start_time=start + timedelta(hours=1))
    _, poor = rated([1], start_time=start + timedelta(hours=3))

    def order(query: str) -> list[int]:
        response = api_client.get(f"/api/sessions/?ordering={query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    # 5.00, then the 4.00s (good, tie, tie_twin) by id descending, 1.00, unrated.
    assert order("-rating") == [best.pk, tie_twin.pk, tie.pk, good.pk, poor.pk, unrated.pk]
    assert order("rating") == [poor.pk, good.pk, tie.pk, tie_twin.pk, best.pk, unrated.pk]
    assert order("-rating,start_time") == [
        best.pk,
        good.pk,
        tie_twin.pk,
        tie.pk,
        poor.pk,
        unrated.pk,
    ]
    # Hiding the only review of `poor` makes it unrated: last, before `unrated` (higher id).
    services.review_set_hidden(
        review_id=poor.creator.reviews_received.get().pk,
        hidden=True,
    )
    assert order("-rating")[-2:] == [poor.pk, unrated.pk]


@pytest.fixture
def rated_catalog() -> dict:
    """100 upcoming sessions by 100 creators, three in four of them rated."""
    viewer = UserFactory()
    creators = User.objects.bulk_create(
        User(username=f"cr{index:03d}", role="creator") for index in range(100)
    )
    CreatorRating.objects.bulk_create(
        CreatorRating(
            creator=creator,
            review_count=2,
            rating_sum=2 * (1 + index % 5),
            average=Decimal(1 + index % 5),
        )
        for index, creator in enumerate(creators)
        if index % 4
    )
    start = timezone.now() + timedelta(days=1)
    Session.objects.bulk_create(
        Session(
            creator=creator,
            title=f"Rated {index:03d}",
            price=Decimal(index % 7),
            duration_minutes=60,
            start_time=start + timedelta(minutes=index),
            capacity=5,
            is_online=True,
            status="published",
        )
        for index, creator in enumerate(creators)
    )
    return {"viewer": viewer, "creators": creators}


@pytest.mark.parametrize("who", ["anonymous", "viewer"])
@pytest.mark.parametrize("query", ["", "?ordering=-rating", "?search=rated&ordering=rating"])
def test_catalog_query_count_is_unchanged_with_ratings(rated_catalog, api_client, who, query):
    client = api_client if who == "anonymous" else auth_client(rated_catalog["viewer"])
    separator = "&" if query else "?"
    one, _ = count_queries(client, f"/api/sessions/{query}{separator}page_size=1")
    hundred, page = count_queries(client, f"/api/sessions/{query}{separator}page_size=100")
    # The same budget as without ratings (test_catalog_filters): count + page (+ the user row).
    assert one == hundred == (2 if who == "anonymous" else 3)
    ratings = [row["creator"]["rating"] for row in page["results"]]
    assert len(ratings) == 100
    assert sum(1 for rating in ratings if rating["average"] is None) == 25
    if "rating" in query:
        averages = [rating["average"] for rating in ratings if rating["average"] is not None]
        assert averages == sorted(averages, reverse="-rating" in query)
        assert ratings[-1]["average"] is None


def test_session_detail_is_still_one_query(rated_catalog, api_client):
    session = Session.objects.get(title="Rated 001")
    queries, body = count_queries(api_client, f"/api/sessions/{session.pk}/")
    assert queries == 1
    assert body["creator"]["rating"] == {"average": 2.0, "count": 2}


def test_deep_pages_by_rating_equal_plain_pages(rated_catalog, api_client, monkeypatch):
    def pages() -> list[int]:
        ids = []
        for page in range(1, 6):
            response = api_client.get(f"/api/sessions/?ordering=-rating&page_size=20&page={page}")
            ids += [row["id"] for row in response.json()["results"]]
        return ids

    monkeypatch.setattr(DeepPagePaginator, "DEFER_FROM_OFFSET", 10**9)

    compiled._shapes.clear()  # shapes compiled under the other threshold
    plain = pages()
    monkeypatch.setattr(DeepPagePaginator, "DEFER_FROM_OFFSET", 0)
    compiled._shapes.clear()  # shapes compiled under the other threshold
    deferred = pages()
    assert deferred == plain
    assert len(set(plain)) == 100


def generic(serializer_class, instance, context):
    return serializers.ModelSerializer.to_representation(
        serializer_class(context=context), instance
    )


def test_lean_catalog_serializers_match_the_generic_rendering_with_ratings():
    creator, _ = rated([5, 2])
    SessionFactory(creator=CreatorFactory())  # unrated, no aggregate row at all
    hidden_only, _ = rated([3])
    services.review_set_hidden(review_id=hidden_only.reviews_received.get().pk, hidden=True)
    context = {"request": RequestFactory().get("/api/sessions/")}

    rows = list(catalog_selectors.catalog_list().filter(start_time__gt=timezone.now()))
    lean = SessionSerializer(rows, many=True, context=context).data
    reference = [generic(SessionSerializer, row, context) for row in rows]

    assert [dict(row) for row in lean] == [
        {**row, "creator": {**row["creator"], "rating": dict(row["creator"]["rating"])}}
        for row in reference
    ]
    assert sorted(row["creator"]["rating"]["count"] for row in lean) == [0, 0, 2]
    mine = list(catalog_selectors.my_sessions(creator=creator))
    lean_mine = MySessionSerializer(mine, many=True, context=context).data
    assert [row["creator"]["rating"] for row in lean_mine] == [{"average": 3.5, "count": 2}] * len(
        mine
    )
    assert [dict(row["creator"]) for row in lean_mine] == [
        dict(generic(MySessionSerializer, row, context)["creator"]) for row in mine
    ]
