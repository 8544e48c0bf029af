"""Public creator profiles and the review lists: shapes, filters, ordering, query budgets."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from backend.models import Booking, CreatorRating, Review, Session, User
from backend.services import reviews as services
from backend.tests.factories import CreatorFactory, SessionFactory, UserFactory
from backend.tests.reviews_support import attended_booking, error_fields, past_session, review_of
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db


def count_queries(client, url: str) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries), response.json()


def usernames(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["username"] for row in response.json()["results"]]


def test_profile_shape_counts_and_categories(api_client):
    creator = CreatorFactory(
        username="ada.l@home", first_name="Ada", last_name="Moreau", bio="Pottery and code."
    )
    now = timezone.now()
    past_session(creator=creator, category="pottery")
    past_session(creator=creator, category="coding", ended_ago=timedelta(days=40))
    SessionFactory(creator=creator, category="coding")
    SessionFactory(creator=creator, category="")
    # In progress: neither held nor upcoming. Drafts and cancelled sessions count for nothing.
    SessionFactory(creator=creator, start_time=now - timedelta(minutes=10), category="yoga")
    SessionFactory(creator=creator, status="draft", category="secret")
    SessionFactory(creator=creator, status="cancelled", category="gone")
    booking = attended_booking(session=Session.objects.filter(category="pottery").get())
    review_of(booking, 4)
    review_of(attended_booking(session=booking.session), 5)

    response = api_client.get(f"/api/creators/{creator.username}/")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": creator.pk,
        "username": "ada.l@home",
        "first_name": "Ada",
        "last_name": "Moreau",
        "avatar": None,
        "bio": "Pottery and code.",
        "categories": ["coding", "pottery", "yoga"],
        "rating": {"average": 4.5, "count": 2},
        "sessions_held": 2,
        "upcoming_sessions": 2,
    }
    listed = api_client.get("/api/creators/").json()["results"]
    assert listed == [response.json()]


def test_only_active_creators_with_a_published_session_are_listed(api_client):
    public = SessionFactory().creator
    SessionFactory(status="draft")
    SessionFactory(status="cancelled")
    CreatorFactory()
    inactive = SessionFactory(creator=CreatorFactory(is_active=False)).creator
    drafts_only = SessionFactory(status="draft").creator

    assert usernames(api_client.get("/api/creators/")) == [public.username]
    for hidden in (inactive, drafts_only, UserFactory()):
        response = api_client.get(f"/api/creators/{hidden.username}/")
        assert (response.status_code, response.json()["code"]) == (404, "creator_not_found")
    assert api_client.get("/api/creators/nobody/reviews/").status_code == 404


def test_search_and_category(api_client):
    yoga = SessionFactory(
        creator=CreatorFactory(username="chen", first_name="Chen", bio="Strength and mobility"),
        category="yoga",
    ).creator
    coder = SessionFactory(
        creator=CreatorFactory(username="bruno", first_name="Bruno", bio="Python for beginners"),
        category="coding",
    ).creator
    past_session(creator=yoga, category="coding")

    assert usernames(api_client.get("/api/creators/?search=python")) == [coder.username]
    assert usernames(api_client.get("/api/creators/?search=CHEN mobility")) == [yoga.username]
    assert usernames(api_client.get("/api/creators/?search=chen python")) == []
    assert usernames(api_client.get("/api/creators/?category=Yoga")) == [yoga.username]
    assert usernames(api_client.get("/api/creators/?category=coding")) == ["bruno", "chen"]
    assert usernames(api_client.get("/api/creators/?ordering=-username")) == ["chen", "bruno"]
    bad = api_client.get("/api/creators/?ordering=password")
    assert bad.status_code == 400
    assert "ordering" in error_fields(bad.json())


def rated_creators(ratings: list[int | None]) -> list[User]:
    """One creator per entry, each with one upcoming session, reviewed once with that rating."""
    creators = []
    for rating in ratings:
        creator = CreatorFactory.create()
        SessionFactory.create(creator=creator)
        if rating is not None:
            review_of(attended_booking(creator=creator), rating)
        creators.append(creator)
    return creators


def test_creators_ordered_by_rating_unrated_last_ties_by_id(api_client):
    four_a, unrated, five, four_b, two = rated_creators([4, None, 5, 4, 2])

    best_first = usernames(api_client.get("/api/creators/?ordering=-rating"))
    worst_first = usernames(api_client.get("/api/creators/?ordering=rating"))

    # Descending, ties by id descending (the catalog's StableOrderingFilter rule).
    assert best_first == [c.username for c in (five, four_b, four_a, two, unrated)]
    assert worst_first == [c.username for c in (two, four_a, four_b, five, unrated)]


def bulk_public_creators(count: int) -> list[User]:
    creators = User.objects.bulk_create(
        User(username=f"bulk{index:03d}", role="creator", bio="bulk") for index in range(count)
    )
    start = timezone.now() + timedelta(days=1)
    Session.objects.bulk_create(
        Session(
            creator=creator,
            title=f"Bulk {index}",
            category=("art", "coding", "yoga")[index % 3],
            price=Decimal("10"),
            duration_minutes=60,
            start_time=start + timedelta(hours=index % 24) * (1 if index % 2 else -3),
            capacity=5,
            is_online=True,
            status="published",
        )
        for index, creator in enumerate(creators)
        for _ in range(2)
    )
    CreatorRating.objects.bulk_create(
        CreatorRating(
            creator=creator,
            review_count=index + 1,
            rating_sum=(index + 1) * (1 + index % 5),
            average=Decimal(1 + index % 5),
        )
        for index, creator in enumerate(creators)
        if index % 4
    )
    return creators


@pytest.mark.parametrize(
    "query", ["", "?ordering=-rating", "?search=bulk&category=coding&ordering=username"]
)
def test_creator_list_query_count_does_not_grow_with_page_size(api_client, query):
    bulk_public_creators(100)
    separator = "&" if query else "?"
    one, first_page = count_queries(api_client, f"/api/creators/{query}{separator}page_size=1")
    hundred, full_page = count_queries(api_client, f"/api/creators/{query}{separator}page_size=100")
    # count + page + the page's categories, for 1 row as for 100.
    assert one == hundred == 3
    assert len(full_page["results"]) == full_page["count"] >= 33
    assert all(row["categories"] for row in full_page["results"])
    assert full_page["results"][0] == first_page["results"][0]


def test_creator_detail_query_count_is_fixed(api_client):
    creators = bulk_public_creators(3)
    queries, body = count_queries(api_client, f"/api/creators/{creators[1].username}/")
    assert queries == 2
    assert body["rating"] == {"average": 2.0, "count": 2}
    assert body["upcoming_sessions"] + body["sessions_held"] <= 2


def bulk_reviews(session: Session, count: int) -> None:
    users = User.objects.bulk_create(User(username=f"att{index:03d}") for index in range(count))
    bookings = Booking.objects.bulk_create(
        Booking(
            session=session,
            user=user,
            amount=session.price,
            currency="USD",
            status="confirmed",
            payment_status="not_required",
        )
        for user in users
    )
    Review.objects.bulk_create(
        Review(
            booking=booking,
            session=session,
            creator=session.creator,
            author=booking.user,
            rating=1 + index % 5,
            comment=f"Review {index}",
        )
        for index, booking in enumerate(bookings)
    )


@pytest.mark.parametrize("list_url", ["session", "creator"])
def test_review_lists_query_count_does_not_grow_with_page_size(api_client, list_url):
    session = past_session(capacity=200)
    bulk_reviews(session, 100)
    Review.objects.filter(comment="Review 7").update(is_hidden=True)
    base = (
        f"/api/sessions/{session.pk}/reviews/"
        if list_url == "session"
        else f"/api/creators/{session.creator.username}/reviews/"
    )
    one, _ = count_queries(api_client, f"{base}?page_size=1")
    hundred, page = count_queries(api_client, f"{base}?page_size=100")
    # The session (or creator) + count + page.
    assert one == hundred == 3
    assert page["count"] == 99
    assert "Review 7" not in {row["comment"] for row in page["results"]}
    ids = [row["id"] for row in page["results"]]
    assert ids == sorted(ids, reverse=True)  # newest first (same created_at: by id)
    assert {row["author"]["username"] for row in page["results"]} >= {"att000", "att099"}


def test_review_lists_are_paginated_newest_first(api_client):
    session = past_session()
    older = review_of(attended_booking(session=session), 2, "older")
    newer = review_of(attended_booking(session=session), 5, "newer")
    Review.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=1))
    other_creators_review = review_of(attended_booking(), 3)

    response = api_client.get(f"/api/creators/{session.creator.username}/reviews/?page_size=1")

    body = response.json()
    assert (body["count"], [row["id"] for row in body["results"]]) == (2, [newer.pk])
    assert body["next"].endswith("page=2&page_size=1")
    session_list = api_client.get(f"/api/sessions/{session.pk}/reviews/").json()
    assert [row["comment"] for row in session_list["results"]] == ["newer", "older"]
    assert other_creators_review.pk not in [row["id"] for row in session_list["results"]]


def test_a_reply_appears_in_the_public_lists(api_client):
    booking = attended_booking()
    review = review_of(booking, 4, "Nice")
    services.review_reply(review_id=review.pk, actor=booking.session.creator, text="Thanks!")
    row = api_client.get(f"/api/sessions/{booking.session_id}/reviews/").json()["results"][0]
    assert (row["comment"], row["reply"]) == ("Nice", "Thanks!")
    assert auth_client(UserFactory()).get(f"/api/reviews/{review.pk}/").json() == row


def test_anonymous_gets_the_lists_but_cannot_write(api_client):
    review = review_of(attended_booking(), 4)
    assert APIClient().get(f"/api/reviews/{review.pk}/").status_code == 200
    for url in (f"/api/reviews/{review.pk}/reply/", f"/api/reviews/{review.pk}/report/"):
        assert api_client.post(url, {"text": "x", "reason": "x"}, format="json").status_code == 401
