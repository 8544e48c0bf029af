"""A creator's rating stays exact under concurrent review changes, on PostgreSQL.

Real threads behind a barrier, one database connection each (run_together). The expected
aggregates are computed from the inputs, not read back from the reviews: without the
`CreatorRating` row lock, two recounts that each miss the other's uncommitted review leave the
aggregate short (and concurrent first reviews would collide inserting the aggregate row).
"""

from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import pytest

from backend.models import CreatorRating, Review
from backend.services import reviews as services
from backend.tests.factories import CreatorFactory, UserFactory
from backend.tests.reviews_support import attended_booking, rating_row, review_of
from backend.tests.support import auth_client, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def run_together(tasks):
    """Every task on its own thread and connection, released at once (see support)."""
    return run_concurrently(tasks, lock_timeout="30s")


def post_review(booking, rating):
    client = auth_client(booking.user)

    def task():
        response = client.post(
            f"/api/bookings/{booking.pk}/review/", {"rating": rating}, format="json"
        )
        return response.status_code, response.json().get("code")

    return task


def test_thirty_first_reviews_of_one_creator_all_count_five_rounds():
    for round_number in range(5):
        creator = CreatorFactory()
        # One session each: the booking's session lock must not be what serialises them.
        bookings = [attended_booking(creator=creator) for _ in range(30)]
        ratings = [1 + (index * 7 + round_number) % 5 for index in range(30)]
        assert not CreatorRating.objects.filter(pk=creator.pk).exists()

        results = run_together(
            [
                post_review(booking, rating)
                for booking, rating in zip(bookings, ratings, strict=True)
            ]
        )

        assert Counter(results) == {(201, None): 30}, f"round {round_number}: {results}"
        total = sum(ratings)
        average = (Decimal(total) / 30).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert rating_row(creator) == (30, total, str(average))


def test_the_same_booking_reviewed_ten_times_at_once_is_one_review():
    booking = attended_booking()
    results = run_together([post_review(booking, 1 + index % 5) for index in range(10)])
    assert Counter(results) == {(201, None): 1, (409, "already_reviewed"): 9}
    review = Review.objects.get()
    assert rating_row(booking.session.creator) == (1, review.rating, f"{review.rating}.00")


def test_new_reviews_edits_and_hides_racing_leave_the_exact_average():
    creator = CreatorFactory()
    # 12 existing reviews, all rated 3; every booking of its own session of the creator.
    existing = [review_of(attended_booking(creator=creator), 3) for _ in range(12)]
    newcomers = [attended_booking(creator=creator) for _ in range(12)]
    assert rating_row(creator) == (12, 36, "3.00")

    def edit(review, rating):
        return lambda: (
            services.review_update(review_id=review.pk, actor=review.author, rating=rating).rating
        )

    def hide(review):
        return lambda: services.review_set_hidden(review_id=review.pk, hidden=True).is_hidden

    tasks = [post_review(booking, 5) for booking in newcomers]  # +12 reviews of 5
    tasks += [edit(review, 1) for review in existing[:6]]  # six 3s become 1s
    tasks += [hide(review) for review in existing[6:10]]  # four 3s leave
    results = run_together(tasks)

    assert results[:12] == [(201, None)] * 12
    assert results[12:18] == [1] * 6
    assert results[18:] == [True] * 4
    # Visible: 12 x 5 (new), 6 x 1 (edited), 2 x 3 (untouched) = 20 reviews, 72 points.
    assert rating_row(creator) == (20, 72, "3.60")


def test_concurrent_reports_of_one_review_by_one_user_are_one_report():
    review = review_of(attended_booking(), 2)
    reporter = UserFactory()

    def report():
        client = auth_client(reporter)
        response = client.post(
            f"/api/reviews/{review.pk}/report/", {"reason": "spam"}, format="json"
        )
        return response.status_code, response.json().get("code")

    results = run_together([report for _ in range(8)])

    assert Counter(results) == {(201, None): 1, (409, "already_reported"): 7}
    assert review.reports.count() == 1
