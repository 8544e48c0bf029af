"""The anonymous catalog page cache, ETags and Cache-Control (backend/catalog_cache.py).

Writes run through the API inside `django_capture_on_commit_callbacks(execute=True)`: the
version tokens that retire cached pages are replaced when the write commits.
"""

import threading
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import transaction

from backend import catalog_cache
from backend.models import Booking
from backend.services.bookings import booking_create
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client, in_background

pytestmark = pytest.mark.django_db

LIST = "/api/sessions/"


def detail(session) -> str:
    return f"/api/sessions/{session.pk}/"


def entry(response, session) -> dict:
    (found,) = [row for row in response.json()["results"] if row["id"] == session.pk]
    return found


@pytest.fixture
def session(db, catalog_cache_on):
    return SessionFactory(capacity=5)


def test_second_anonymous_read_is_served_from_the_cache_without_a_query(
    api_client, session, django_assert_num_queries
):
    first = api_client.get(LIST)
    assert first.status_code == 200
    with django_assert_num_queries(0):
        second = api_client.get(LIST)
    assert second.status_code == 200
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]
    assert second["Content-Type"] == first["Content-Type"] == "application/json"

    api_client.get(detail(session))
    with django_assert_num_queries(0):
        cached = api_client.get(detail(session))
    assert cached.json()["id"] == session.pk


def test_cached_pages_are_the_bytes_the_uncached_view_renders(api_client, session, settings):
    BookingFactory(session=session, seats=2)
    api_client.get(LIST, {"page_size": 1})
    cached_list = api_client.get(LIST, {"page_size": 1})
    api_client.get(detail(session))
    cached_detail = api_client.get(detail(session))
    settings.CATALOG_CACHE_SECONDS = 0
    cache.clear()
    assert api_client.get(LIST, {"page_size": 1}).content == cached_list.content
    assert api_client.get(detail(session)).content == cached_detail.content
    assert cached_detail.json()["seats_left"] == 3


def test_query_string_is_normalised_and_distinct_queries_get_distinct_pages(
    api_client, session, django_assert_num_queries
):
    SessionFactory(category="yoga")
    SessionFactory()
    first = api_client.get(f"{LIST}?page_size=1&category=coding")
    with django_assert_num_queries(0):
        same = api_client.get(f"{LIST}?category=coding&page_size=1")
    assert same.content == first.content
    assert same.json()["next"].endswith("?category=coding&page=2&page_size=1")
    yoga = api_client.get(f"{LIST}?category=yoga&page_size=1")
    assert [row["category"] for row in yoga.json()["results"]] == ["yoga"]


def test_a_booking_retires_the_list_and_the_detail_at_once(
    api_client, session, user, django_capture_on_commit_callbacks
):
    assert entry(api_client.get(LIST), session)["seats_left"] == 5
    assert api_client.get(detail(session)).json()["seats_left"] == 5
    with django_capture_on_commit_callbacks(execute=True):
        booked = auth_client(user).post("/api/bookings/", {"session": session.pk, "seats": 2})
    assert booked.status_code == 201
    assert entry(api_client.get(LIST), session)["seats_left"] == 3
    assert api_client.get(detail(session)).json()["seats_left"] == 3


def test_a_cancellation_gives_the_seats_back_at_once(
    api_client, user, catalog_cache_on, django_capture_on_commit_callbacks
):
    session = SessionFactory(capacity=5, price=Decimal("0.00"))
    booking = BookingFactory(session=session, user=user, seats=2)
    assert api_client.get(detail(session)).json()["seats_left"] == 3
    assert entry(api_client.get(LIST), session)["seats_left"] == 3
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert cancelled.status_code == 200, cancelled.json()
    assert Booking.objects.get(pk=booking.pk).status == Booking.Status.CANCELLED
    assert api_client.get(detail(session)).json()["seats_left"] == 5
    assert entry(api_client.get(LIST), session)["seats_left"] == 5


def test_a_session_edit_and_a_capacity_change_show_at_once(
    api_client, session, django_capture_on_commit_callbacks
):
    BookingFactory(session=session, seats=1)
    owner = auth_client(session.creator)
    assert api_client.get(detail(session)).json()["title"] == session.title
    api_client.get(LIST)
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.patch(detail(session), {"title": "Renamed"}).status_code == 200
    assert api_client.get(detail(session)).json()["title"] == "Renamed"
    assert entry(api_client.get(LIST), session)["title"] == "Renamed"
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.patch(detail(session), {"capacity": 8}).status_code == 200
    assert api_client.get(detail(session)).json()["seats_left"] == 7
    assert entry(api_client.get(LIST), session)["seats_left"] == 7


def test_a_creator_rename_retires_their_sessions_pages(
    api_client, session, django_capture_on_commit_callbacks
):
    api_client.get(detail(session))
    api_client.get(LIST)
    with django_capture_on_commit_callbacks(execute=True):
        renamed = auth_client(session.creator).patch(
            "/api/users/update_profile/", {"first_name": "Renamed"}
        )
    assert renamed.status_code == 200
    assert api_client.get(detail(session)).json()["creator"]["first_name"] == "Renamed"
    assert entry(api_client.get(LIST), session)["creator"]["first_name"] == "Renamed"


def test_a_booking_keeps_other_sessions_detail_pages(
    api_client, session, user, django_capture_on_commit_callbacks, django_assert_num_queries
):
    other = SessionFactory()
    api_client.get(detail(other))
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(user).post("/api/bookings/", {"session": session.pk})
    with django_assert_num_queries(0):
        assert api_client.get(detail(other)).json()["seats_left"] == other.capacity


def test_a_write_that_rolls_back_retires_nothing(
    api_client, session, user, django_capture_on_commit_callbacks, django_assert_num_queries
):
    api_client.get(detail(session))
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        booking_create(user=user, session_id=session.pk, seats=1)
        raise RuntimeError("rolled back")
    assert callbacks == []
    with django_assert_num_queries(0):
        assert api_client.get(detail(session)).json()["seats_left"] == 5


def test_if_none_match_answers_304_from_the_cache(api_client, session, django_assert_num_queries):
    for path in (LIST, detail(session)):
        first = api_client.get(path)
        etag = first["ETag"]
        assert etag.startswith('"') and etag.endswith('"')
        with django_assert_num_queries(0):
            not_modified = api_client.get(path, HTTP_IF_NONE_MATCH=f'"other", {etag}')
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        assert not_modified["ETag"] == etag
        assert not_modified["Cache-Control"].startswith("public, max-age=")
        assert api_client.get(path, HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_a_changed_page_is_a_200_with_a_new_etag(
    api_client, session, user, django_capture_on_commit_callbacks
):
    etag = api_client.get(detail(session))["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(user).post("/api/bookings/", {"session": session.pk})
    changed = api_client.get(detail(session), HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["seats_left"] == 4


def test_anonymous_pages_are_public_for_what_is_left_of_their_ttl(
    api_client, session, catalog_cache_on
):
    for path in (LIST, detail(session)):
        for response in (api_client.get(path), api_client.get(path)):
            directive, max_age = response["Cache-Control"].split(", max-age=")
            assert directive == "public"
            assert 0 <= int(max_age) <= catalog_cache_on
            assert "Authorization" in response["Vary"]


def test_signed_in_readers_never_read_or_fill_the_anonymous_cache(
    api_client, session, user, django_assert_num_queries, django_assert_max_num_queries
):
    BookingFactory(session=session, user=user)  # confirmed: sees the meeting link
    signed_in = auth_client(user)
    with django_assert_max_num_queries(3):  # its user, the page (and count): never 0
        first = signed_in.get(detail(session))
    assert first.json()["meeting_url"] == session.meeting_url
    assert first["Cache-Control"] == "private, no-cache"
    assert "Authorization" in first["Vary"]
    # Not stored for anonymous readers: their first read renders (and hides the link).
    anonymous = api_client.get(detail(session))
    assert anonymous.json()["meeting_url"] is None
    assert entry(api_client.get(LIST), session)["meeting_url"] is None
    # Not served to the signed-in reader either, now that an anonymous page is stored.
    again = signed_in.get(detail(session))
    assert again.json()["meeting_url"] == session.meeting_url
    assert entry(signed_in.get(LIST), session)["meeting_url"] == session.meeting_url
    with django_assert_num_queries(0):
        assert api_client.get(detail(session)).json()["meeting_url"] is None


def test_signed_in_readers_get_304s_for_their_own_etag(api_client, session, user):
    signed_in = auth_client(user)
    etag = signed_in.get(LIST)["ETag"]
    assert signed_in.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
    # Another viewer's page differs (the creator sees the link): not their ETag.
    creator_etag = auth_client(session.creator).get(detail(session))["ETag"]
    assert signed_in.get(detail(session), HTTP_IF_NONE_MATCH=creator_etag).status_code == 200


def test_a_no_cache_request_skips_the_cache(api_client, session, django_assert_max_num_queries):
    api_client.get(detail(session))
    with django_assert_max_num_queries(1) as queries:
        api_client.get(detail(session), HTTP_CACHE_CONTROL="no-cache")
    assert len(queries) == 1


def test_errors_are_not_cached(api_client, session, django_capture_on_commit_callbacks):
    assert api_client.get(LIST, {"page": 99}).status_code == 404
    assert api_client.get(LIST, {"min_price": "x"}).status_code == 400
    assert api_client.get("/api/sessions/999999/").status_code == 404
    # Sessions added as the API adds them: the list's token (and with it the page total,
    # catalog_cache.cached_total) is retired when they commit.
    with django_capture_on_commit_callbacks(execute=True):
        SessionFactory.create_batch(25)
        catalog_cache.catalog_changed(session_id=None)
    assert api_client.get(LIST, {"page": 2}).status_code == 200


def test_a_cache_that_fails_serves_uncached_pages(
    api_client, session, monkeypatch, django_capture_on_commit_callbacks
):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    # Reads and token writes fail (the throttle's counters, also in the cache, are left up).
    monkeypatch.setattr(cache, "get_many", down)
    monkeypatch.setattr(cache, "set_many", down)
    response = api_client.get(detail(session))
    assert response.status_code == 200
    assert response.json()["seats_left"] == 5
    assert entry(api_client.get(LIST), session)["seats_left"] == 5
    # The token write on commit fails quietly; the booking stays.
    with django_capture_on_commit_callbacks(execute=True):
        booking_create(user=UserFactory(), session_id=session.pk, seats=1)
    assert Booking.objects.filter(session=session).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_page_rendered_before_a_booking_commits_is_retired_by_the_commit(catalog_cache_on):
    """The race the commit-time retirement exists for: a reader renders (and stores) the page
    while a booking is written but not committed; once it commits the page is fresh."""
    from rest_framework.test import APIClient

    session = SessionFactory(capacity=5)
    user = UserFactory()
    written, release = threading.Event(), threading.Event()

    def book() -> None:
        with transaction.atomic():
            booking_create(user=user, session_id=session.pk, seats=2)
            written.set()
            assert release.wait(10)

    writer = in_background(book)
    assert written.wait(10)
    reader = APIClient()
    assert reader.get(detail(session)).json()["seats_left"] == 5  # not committed yet
    assert entry(reader.get(LIST), session)["seats_left"] == 5
    release.set()
    writer.result()
    assert reader.get(detail(session)).json()["seats_left"] == 3
    assert entry(reader.get(LIST), session)["seats_left"] == 3


def test_one_transaction_retires_pages_once_however_many_locks_it_takes(
    api_client, catalog_cache_on, django_capture_on_commit_callbacks
):
    from backend.catalog_cache import _PendingBump

    session = SessionFactory(capacity=5, price=Decimal("0.00"))
    BookingFactory.create_batch(3, session=session)
    api_client.get(detail(session))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        cancelled = auth_client(session.creator).patch(detail(session), {"status": "cancelled"})
    assert cancelled.status_code == 200
    bumps = [callback for callback in callbacks if isinstance(callback, _PendingBump)]
    assert len(bumps) == 1
    assert bumps[0].session_ids == {session.pk}
    assert api_client.get(detail(session)).json()["status"] == "cancelled"
