"""Reviews through the API: who may review, editing, replies, reports, limits, plain text.

Every denial asserts that nothing was written: no review, no report, no rating aggregate row.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from backend.models import Booking, CreatorRating, Review, ReviewReport
from backend.services import reviews as services
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.reviews_support import (
    attended_booking,
    error_fields,
    past_session,
    rating_row,
    review_of,
)
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db


def post_review(booking: Booking, payload: dict | None = None, client=None):
    client = client or auth_client(booking.user)
    return client.post(
        f"/api/bookings/{booking.pk}/review/",
        payload if payload is not None else {"rating": 4, "comment": "Clear and kind."},
        format="json",
    )


def nothing_written() -> tuple[int, int, int]:
    return (Review.objects.count(), ReviewReport.objects.count(), CreatorRating.objects.count())


# --- Who may review -----------------------------------------------------------------------


def test_the_attendee_reviews_after_the_end():
    booking = attended_booking()
    response = post_review(booking, {"rating": 5, "comment": "Loved it."})

    assert response.status_code == 201, response.content
    review = Review.objects.get()
    body = response.json()
    assert body == {
        "id": review.pk,
        "booking": booking.pk,
        "session": booking.session_id,
        "author": {"id": booking.user_id, "username": booking.user.username},
        "rating": 5,
        "comment": "Loved it.",
        "reply": None,
        "replied_at": None,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_at"].endswith("Z")
    assert (review.creator_id, review.session_id, review.author_id) == (
        booking.session.creator_id,
        booking.session_id,
        booking.user_id,
    )
    assert rating_row(booking.session.creator) == (1, 5, "5.00")


def test_a_comment_is_optional_and_kept_verbatim_as_plain_text():
    booking = attended_booking()
    assert post_review(booking, {"rating": 3}).json()["comment"] == ""

    other = attended_booking(session=booking.session)
    markup = '<script>alert("x")</script> <b>bold</b> &amp;'
    response = post_review(other, {"rating": 4, "comment": markup})
    assert response.status_code == 201
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["comment"] == markup
    assert Review.objects.get(pk=response.json()["id"]).comment == markup


def started_not_ended(booking_user):
    session = SessionFactory(start_time=timezone.now() - timedelta(minutes=30))
    return BookingFactory(session=session, user=booking_user)


DENIALS = {
    "upcoming": (
        lambda user: BookingFactory(user=user),
        409,
        "session_not_ended",
    ),
    "in_progress": (started_not_ended, 409, "session_not_ended"),
    "cancelled": (
        lambda user: BookingFactory(session=past_session(), user=user, status="cancelled"),
        409,
        "booking_not_confirmed",
    ),
    "expired": (
        lambda user: BookingFactory(session=past_session(), user=user, status="expired"),
        409,
        "booking_not_confirmed",
    ),
    "pending": (
        lambda user: BookingFactory(
            session=past_session(), user=user, status="pending", payment_status="unpaid"
        ),
        409,
        "booking_not_confirmed",
    ),
    "window_closed": (
        lambda user: attended_booking(user=user, ended_ago=timedelta(days=30, minutes=1)),
        409,
        "review_window_closed",
    ),
}


@pytest.mark.parametrize("case", DENIALS)
def test_only_confirmed_bookings_of_ended_sessions_within_30_days(case):
    make_booking, expected_status, expected_code = DENIALS[case]
    user = UserFactory()
    booking = make_booking(user)

    response = post_review(booking)

    assert (response.status_code, response.json()["code"]) == (expected_status, expected_code)
    assert nothing_written() == (0, 0, 0)


def test_the_last_day_of_the_window_is_still_open():
    booking = attended_booking(ended_ago=timedelta(days=29, hours=23))
    assert post_review(booking).status_code == 201


def test_someone_elses_booking_is_not_found_and_the_creator_cannot_review_it():
    booking = attended_booking()
    stranger = post_review(booking, client=auth_client(UserFactory()))
    assert (stranger.status_code, stranger.json()["code"]) == (404, "not_found")

    creator = post_review(booking, client=auth_client(booking.session.creator))
    assert (creator.status_code, creator.json()["code"]) == (403, "not_booking_user")

    assert post_review(booking).status_code == 201
    missing = auth_client(booking.user).post(
        "/api/bookings/999999/review/", {"rating": 4}, format="json"
    )
    assert missing.status_code == 404
    assert Review.objects.count() == 1


def test_a_second_review_of_the_same_booking_is_a_conflict():
    booking = attended_booking()
    assert post_review(booking, {"rating": 2}).status_code == 201

    again = post_review(booking, {"rating": 5, "comment": "changed my mind"})

    assert (again.status_code, again.json()["code"]) == (409, "already_reviewed")
    assert list(Review.objects.values_list("rating", "comment")) == [(2, "")]
    assert rating_row(booking.session.creator) == (1, 2, "2.00")


def test_anonymous_cannot_review():
    booking = attended_booking()
    response = post_review(booking, client=APIClient())
    assert response.status_code == 401
    assert nothing_written() == (0, 0, 0)


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": 2.5}, "rating"),
        ({"rating": "five"}, "rating"),
        ({"rating": None}, "rating"),
        ({"comment": "no rating"}, "rating"),
        ({"rating": 3, "comment": "x" * 2001}, "comment"),
        ({"rating": 3, "comment": "nul\x00byte"}, "comment"),
        ({"rating": 3, "comment": ["a list"]}, "comment"),
    ],
)
def test_bad_review_input_is_a_400_and_stores_nothing(payload, field):
    booking = attended_booking()
    response = post_review(booking, payload)
    assert response.status_code == 400, response.content
    assert field in error_fields(response.json())
    assert nothing_written() == (0, 0, 0)


def test_a_comment_of_exactly_2000_characters_is_accepted():
    booking = attended_booking()
    assert post_review(booking, {"rating": 3, "comment": "é" * 2000}).status_code == 201


# --- Editing ------------------------------------------------------------------------------


def patch(review: Review, payload: dict, user):
    return auth_client(user).patch(f"/api/reviews/{review.pk}/", payload, format="json")


def test_the_author_edits_within_seven_days_and_the_average_follows():
    first = attended_booking()
    second = attended_booking(session=first.session)
    review = review_of(first, 5)
    review_of(second, 4)
    creator = first.session.creator
    assert rating_row(creator) == (2, 9, "4.50")

    response = patch(review, {"rating": 2, "comment": "On reflection, too fast."}, first.user)

    assert response.status_code == 200, response.content
    assert response.json()["rating"] == 2
    assert response.json()["comment"] == "On reflection, too fast."
    assert rating_row(creator) == (2, 6, "3.00")
    comment_only = patch(review, {"comment": "Too fast."}, first.user)
    assert comment_only.json()["rating"] == 2
    assert rating_row(creator) == (2, 6, "3.00")


def test_editing_after_seven_days_is_refused_and_changes_nothing():
    booking = attended_booking()
    review = review_of(booking, 5, "Great")
    Review.objects.filter(pk=review.pk).update(
        created_at=timezone.now() - timedelta(days=7, minutes=1)
    )

    response = patch(review, {"rating": 1}, booking.user)

    assert (response.status_code, response.json()["code"]) == (409, "edit_window_closed")
    assert Review.objects.values_list("rating", "comment").get() == (5, "Great")
    assert rating_row(booking.session.creator) == (1, 5, "5.00")


def test_only_the_author_edits():
    booking = attended_booking()
    review = review_of(booking, 5)
    for other in (UserFactory(), booking.session.creator):
        response = patch(review, {"rating": 1}, other)
        assert (response.status_code, response.json()["code"]) == (403, "not_review_author")
    assert Review.objects.get().rating == 5
    anonymous = APIClient().patch(f"/api/reviews/{review.pk}/", {"rating": 1}, format="json")
    assert anonymous.status_code == 401


@pytest.mark.parametrize("payload", [{}, {"rating": 9}, {"comment": "y" * 2001}])
def test_bad_edits_are_400(payload):
    booking = attended_booking()
    review = review_of(booking, 5, "Great")
    assert patch(review, payload, booking.user).status_code == 400
    assert Review.objects.values_list("rating", "comment").get() == (5, "Great")


# --- Replies ------------------------------------------------------------------------------


def reply(review: Review, user, text="Thank you!"):
    return auth_client(user).post(f"/api/reviews/{review.pk}/reply/", {"text": text}, format="json")


def test_the_creator_replies_once():
    booking = attended_booking()
    review = review_of(booking, 4)
    creator = booking.session.creator

    response = reply(review, creator, "Thanks, see you next time.")

    assert response.status_code == 200, response.content
    assert response.json()["reply"] == "Thanks, see you next time."
    assert response.json()["replied_at"].endswith("Z")
    again = reply(review, creator, "Edited reply")
    assert (again.status_code, again.json()["code"]) == (409, "already_replied")
    assert Review.objects.get().reply == "Thanks, see you next time."


def test_nobody_but_the_sessions_creator_replies():
    booking = attended_booking()
    review = review_of(booking, 4)
    for other in (booking.user, CreatorFactory(), UserFactory()):
        response = reply(review, other)
        assert (response.status_code, response.json()["code"]) == (403, "not_session_creator")
    assert Review.objects.get().replied_at is None
    blank = reply(review, booking.session.creator, "   ")
    assert blank.status_code == 400
    assert "text" in error_fields(blank.json())
    assert Review.objects.get().replied_at is None


# --- Reports ------------------------------------------------------------------------------


def report(review: Review, user, reason="Spam"):
    return auth_client(user).post(
        f"/api/reviews/{review.pk}/report/", {"reason": reason}, format="json"
    )


def test_any_signed_in_user_reports_once():
    booking = attended_booking()
    review = review_of(booking, 1, "Buy cheap watches at ...")
    reporter = UserFactory()

    response = report(review, reporter)

    assert response.status_code == 201, response.content
    stored = ReviewReport.objects.get()
    assert response.json() == {
        "id": stored.pk,
        "review": review.pk,
        "reason": "Spam",
        "created_at": response.json()["created_at"],
    }
    assert (stored.reporter_id, stored.review_id) == (reporter.pk, review.pk)
    again = report(review, reporter, "Still spam")
    assert (again.status_code, again.json()["code"]) == (409, "already_reported")
    assert report(review, booking.session.creator).status_code == 201
    assert ReviewReport.objects.count() == 2
    # Reports alone hide nothing: staff decide.
    assert Review.objects.get().is_hidden is False


def test_reports_need_a_signed_in_user_and_a_reason():
    booking = attended_booking()
    review = review_of(booking, 3)
    anonymous = APIClient().post(
        f"/api/reviews/{review.pk}/report/", {"reason": "x"}, format="json"
    )
    assert anonymous.status_code == 401
    for reason in ("", "r" * 1001):
        assert report(review, UserFactory(), reason).status_code == 400
    assert report(review, UserFactory(), "r" * 1000).status_code == 201
    assert ReviewReport.objects.count() == 1


# --- Throttling ---------------------------------------------------------------------------


def test_writing_reviews_is_throttled_per_user(monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "reviews", "2/minute")
    user = UserFactory()
    client = auth_client(user)
    bookings = [attended_booking(user=user) for _ in range(3)]

    statuses = [post_review(booking, client=client).status_code for booking in bookings]

    assert statuses == [201, 201, 429]
    assert Review.objects.count() == 2
    # Another user has their own budget.
    assert post_review(attended_booking()).status_code == 201


def test_reporting_is_throttled_per_user(monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "review_reports", "2/minute")
    session = past_session()
    reviews = [review_of(attended_booking(session=session), 3) for _ in range(3)]
    reporter = UserFactory()

    statuses = [report(review, reporter).status_code for review in reviews]

    assert statuses == [201, 201, 429]
    assert ReviewReport.objects.count() == 2


# --- Lists and hidden reviews -------------------------------------------------------------


def listed(url: str) -> list[int]:
    response = APIClient().get(url)
    assert response.status_code == 200, response.content
    return [row["rating"] for row in response.json()["results"]]


def test_hidden_reviews_leave_every_list_and_average_and_come_back_when_unhidden():
    session = past_session()
    creator = session.creator
    other_session = past_session(creator=creator)
    kept = review_of(attended_booking(session=session), 5)
    hidden = review_of(attended_booking(session=session), 1)
    review_of(attended_booking(session=other_session), 3)
    assert rating_row(creator) == (3, 9, "3.00")

    services.review_set_hidden(review_id=hidden.pk, hidden=True)

    assert rating_row(creator) == (2, 8, "4.00")
    assert listed(f"/api/sessions/{session.pk}/reviews/") == [5]
    assert listed(f"/api/creators/{creator.username}/reviews/") == [3, 5]
    profile = APIClient().get(f"/api/creators/{creator.username}/").json()
    assert profile["rating"] == {"average": 4.0, "count": 2}
    catalog_entry = APIClient().get(f"/api/sessions/{session.pk}/").json()
    assert catalog_entry["creator"]["rating"] == {"average": 4.0, "count": 2}
    author = hidden.author
    assert auth_client(author).get(f"/api/reviews/{hidden.pk}/").status_code == 404
    assert patch(hidden, {"rating": 5}, author).status_code == 404
    assert reply(hidden, creator).status_code == 404
    assert report(hidden, UserFactory()).status_code == 404
    assert auth_client(author).get(f"/api/reviews/{kept.pk}/").status_code == 200

    services.review_set_hidden(review_id=hidden.pk, hidden=False)

    assert rating_row(creator) == (3, 9, "3.00")
    assert listed(f"/api/sessions/{session.pk}/reviews/") == [1, 5]


def test_averages_stay_exact_through_creates_edits_and_hides():
    session = past_session()
    creator = session.creator
    ratings = [5, 4, 4, 2, 1, 5, 3]
    reviews = [review_of(attended_booking(session=session), rating) for rating in ratings]
    assert rating_row(creator) == (7, 24, "3.43")  # 24 / 7 = 3.428...

    services.review_update(review_id=reviews[4].pk, actor=reviews[4].author, rating=4)
    services.review_set_hidden(review_id=reviews[0].pk, hidden=True)
    services.review_set_hidden(review_id=reviews[0].pk, hidden=True)  # twice: no double count
    services.review_set_hidden(review_id=reviews[3].pk, hidden=True)

    # Visible: 4, 4, 4, 5, 3 -> 20 / 5.
    assert rating_row(creator) == (5, 20, "4.00")
    for review in reviews:
        services.review_set_hidden(review_id=review.pk, hidden=True)
    assert rating_row(creator) == (0, 0, None)
    profile = APIClient().get(f"/api/creators/{creator.username}/").json()
    assert profile["rating"] == {"average": None, "count": 0}


def test_session_reviews_of_a_draft_or_unknown_session_are_404():
    draft = SessionFactory(status="draft")
    client = APIClient()
    assert client.get(f"/api/sessions/{draft.pk}/reviews/").status_code == 404
    assert client.get("/api/sessions/999999/reviews/").status_code == 404
    assert client.get(f"/api/reviews/{999999}/").json()["code"] == "review_not_found"


def test_ids_beyond_bigint_are_404_not_500(user_client):
    huge = "9" * 30
    anonymous = APIClient()
    assert anonymous.get(f"/api/sessions/{huge}/reviews/").status_code == 404
    assert anonymous.get(f"/api/reviews/{huge}/").status_code == 404
    for url in (f"/api/bookings/{huge}/review/", f"/api/reviews/{huge}/report/"):
        response = user_client.post(url, {"rating": 3, "reason": "x"}, format="json")
        assert response.status_code == 404, url
    assert user_client.patch(f"/api/reviews/{huge}/", {"rating": 3}, format="json").status_code == (
        404
    )
    assert nothing_written() == (0, 0, 0)
