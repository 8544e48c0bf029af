"""Staff moderation in the admin: hide/unhide move the averages; nothing is edited or deleted."""

import pytest
from django.contrib.auth.models import Permission

from backend.models import Review, User
from backend.services.reviews import review_report
from backend.tests.factories import UserFactory
from backend.tests.reviews_support import attended_booking, past_session, rating_row, review_of

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/backend/review/"


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "long-pass-12"))
    return client


def run_action(client, action: str, reviews: list[Review]):
    return client.post(
        CHANGELIST, {"action": action, "_selected_action": [review.pk for review in reviews]}
    )


def test_hide_and_unhide_actions_move_the_average(staff_client):
    session = past_session()
    creator = session.creator
    reviews = [review_of(attended_booking(session=session), rating) for rating in (5, 4, 1)]
    assert rating_row(creator) == (3, 10, "3.33")

    response = run_action(staff_client, "hide_reviews", reviews[2:])

    assert response.status_code == 302
    assert list(Review.objects.filter(is_hidden=True).values_list("pk", flat=True)) == [
        reviews[2].pk
    ]
    assert rating_row(creator) == (2, 9, "4.50")
    run_action(staff_client, "unhide_reviews", reviews)
    assert not Review.objects.filter(is_hidden=True).exists()
    assert rating_row(creator) == (3, 10, "3.33")


def test_the_changelist_shows_reports_escaped_without_a_query_per_row(
    staff_client, django_assert_max_num_queries
):
    session = past_session()
    reviews = [
        review_of(attended_booking(session=session), 2, "<script>alert(1)</script>")
        for _ in range(12)
    ]
    for reporter in UserFactory.create_batch(3):
        review_report(review_id=reviews[0].pk, reporter=reporter, reason="<b>rude</b>")

    with django_assert_max_num_queries(8):
        listing = staff_client.get(CHANGELIST)
    assert listing.status_code == 200
    detail = staff_client.get(f"{CHANGELIST}{reviews[0].pk}/change/").content.decode()
    assert "<b>rude</b>" not in detail
    assert "&lt;b&gt;rude&lt;/b&gt;" in detail
    assert "<script>alert(1)</script>" not in detail


def test_staff_cannot_delete_or_add_reviews(staff_client):
    review = review_of(attended_booking(), 4)
    assert staff_client.get(f"{CHANGELIST}{review.pk}/delete/").status_code == 403
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    staff_client.post(f"{CHANGELIST}{review.pk}/change/", {"rating": 1, "comment": "edited"})
    assert Review.objects.values_list("rating", "comment").get() == (4, "")


def test_staff_without_the_change_permission_cannot_hide(client):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_review"))
    client.force_login(viewer)
    review = review_of(attended_booking(), 1)

    assert client.get(CHANGELIST).status_code == 200
    run_action(client, "hide_reviews", [review])

    assert Review.objects.get().is_hidden is False
    assert rating_row(review.creator) == (1, 1, "1.00")
