"""GET /api/users/me/export/: everything held about the caller, nothing of anyone else."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from backend.models import Booking, Payment, User
from backend.services.booking_changes import bookings_expire_stale
from backend.services.bookings import booking_cancel
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.payments_support import book, pay
from backend.tests.privacy_support import EXPORT_URL
from backend.tests.support import auth_client
from backend.throttling import ScopedRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_users(fake_stripe, django_capture_on_commit_callbacks):
    """Two people booking the same sessions of one creator, with payments and refunds."""
    creator = CreatorFactory(username="cree", email="cree@example.org", first_name="Crea")
    user = UserFactory(username="exporter", email="exporter@example.org", bio="My bio")
    other = UserFactory(username="otherperson", email="other@example.org", first_name="Olga")
    sessions = [SessionFactory(creator=creator, price=price) for price in (30, 0, 12)]
    mine, theirs = [], []
    for who, bookings in ((user, mine), (other, theirs)):
        paid, _ = pay(fake_stripe, who, book(who, sessions[0]))
        bookings.append(paid)
        bookings.append(book(who, sessions[1]))
        bookings.append(book(who, sessions[2]))
    # A refund of the user's paid booking, cancelled by the creator (an event by someone else);
    # the refund is a queued task, run here as `make run` runs it, after the commit.
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=mine[0].pk, actor=creator)
    Booking.objects.filter(pk=mine[1].pk).update(notes="Vegetarian, please")
    return {"creator": creator, "user": user, "other": other, "mine": mine, "theirs": theirs}


def test_export_contains_every_booking_and_payment_of_the_user(two_users):
    user = two_users["user"]

    response = auth_client(user).get(EXPORT_URL)

    assert response.status_code == 200
    body = response.json()
    assert body["profile"]["id"] == user.pk
    assert body["profile"]["email"] == "exporter@example.org"
    assert body["profile"]["bio"] == "My bio"
    exported = {booking["id"]: booking for booking in body["bookings"]}
    assert set(exported) == set(Booking.objects.filter(user=user).values_list("pk", flat=True))
    exported_payments = {
        payment["stripe_id"] for booking in body["bookings"] for payment in booking["payments"]
    }
    assert exported_payments == set(
        Payment.objects.filter(booking__user=user).values_list("stripe_id", flat=True)
    )
    assert {payment["kind"] for booking in body["bookings"] for payment in booking["payments"]} == {
        "charge",
        "refund",
    }
    refunded = exported[two_users["mine"][0].pk]
    assert (refunded["status"], refunded["payment_status"]) == ("cancelled", "refunded")
    assert refunded["amount"] == "30.00"
    # The audit trail, oldest first, naming actors by role only.
    assert [(event["reason"], event["actor"]) for event in refunded["events"]] == [
        ("created", "you"),
        ("paid", "you"),
        ("cancelled_by_creator", "creator"),
        ("refunded", "system"),
    ]
    assert exported[two_users["mine"][1].pk]["notes"] == "Vegetarian, please"
    assert refunded["session"]["creator"] == {"id": two_users["creator"].pk, "username": "cree"}
    assert len(body["sign_ins"]) == 1
    assert body["sign_ins"][0]["revoked"] is False
    assert body["sessions"] == []
    assert body["files"] == []


def test_export_contains_nothing_of_anyone_else(two_users):
    response = auth_client(two_users["user"]).get(EXPORT_URL)

    text = response.content.decode()
    other = two_users["other"]
    for foreign in ("otherperson", "other@example.org", "Olga", other.last_name):
        assert foreign not in text
    # Nor the creator's private details: only their public id and username.
    for private in ("cree@example.org", "Crea"):
        assert private not in text
    their_ids = {booking.pk for booking in two_users["theirs"]}
    assert not their_ids & {booking["id"] for booking in response.json()["bookings"]}
    for stripe_id in Payment.objects.filter(booking__user=other).values_list(
        "stripe_id", flat=True
    ):
        assert stripe_id not in text


def test_a_creator_exports_their_sessions_but_not_their_attendees(two_users):
    response = auth_client(two_users["creator"]).get(EXPORT_URL)

    body = response.json()
    assert [session["id"] for session in body["sessions"]] == list(
        two_users["creator"].sessions.order_by("start_time", "id").values_list("pk", flat=True)
    )
    assert len(body["sessions"]) == 3
    assert body["bookings"] == []
    text = response.content.decode()
    for attendee in ("exporter", "otherperson", "other@example.org"):
        assert attendee not in text


def test_a_creators_session_exports_what_they_set_on_it():
    creator = CreatorFactory()
    decision_at = timezone.now() + timedelta(days=5)
    session = SessionFactory(
        creator=creator,
        timezone="Europe/Paris",
        refund_policy=[{"hours_before": 48, "refund_percent": 100}],
        min_attendees=3,
        decision_at=decision_at,
    )
    plain = SessionFactory(creator=creator, start_time=session.start_time + timedelta(days=1))

    exported = auth_client(creator).get(EXPORT_URL).json()["sessions"]

    # The catalog's fields, less the creator (the caller), what is computed when read, and
    # the image (under `files`).
    assert list(exported[0]) == [
        "id",
        "title",
        "description",
        "category",
        "price",
        "currency",
        "duration_minutes",
        "start_time",
        "capacity",
        "location",
        "is_online",
        "meeting_url",
        "status",
        "timezone",
        "series",
        "refund_policy",
        "min_attendees",
        "decision_at",
        "decision",
        "cancel_reason",
        "created_at",
        "updated_at",
    ]
    mine, other = exported
    assert (mine["id"], other["id"]) == (session.pk, plain.pk)
    assert mine["timezone"] == "Europe/Paris"
    assert mine["refund_policy"] == [{"hours_before": 48, "refund_percent": 100}]
    assert (mine["min_attendees"], mine["decision"], mine["cancel_reason"]) == (3, "", "")
    assert mine["decision_at"] == decision_at.isoformat().replace("+00:00", "Z")
    assert mine["series"] is None
    assert (other["refund_policy"], other["min_attendees"], other["decision_at"]) == (
        None,
        None,
        None,
    )


def test_export_is_an_attachment_of_json(user_client, user):
    response = user_client.get(EXPORT_URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="sessions-marketplace-export-{user.pk}.json"'
    )
    assert json.loads(response.content)["profile"]["username"] == user.username


def test_export_reads_in_a_fixed_number_of_queries(
    user, user_client, django_assert_max_num_queries
):
    def count_queries() -> int:
        with django_assert_max_num_queries(20) as captured:
            assert user_client.get(EXPORT_URL).status_code == 200
        return len(captured.captured_queries)

    BookingFactory(user=user)
    one = count_queries()
    for _ in range(5):
        BookingFactory(user=user, payment_status="paid")
    assert count_queries() == one


def test_export_is_throttled_per_user(monkeypatch, user_client):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "privacy_export", "2/hour")

    assert [user_client.get(EXPORT_URL).status_code for _ in range(3)] == [200, 200, 429]
    # Another user has their own allowance.
    assert auth_client(UserFactory()).get(EXPORT_URL).status_code == 200


def test_export_needs_authentication(api_client):
    response = api_client.get(EXPORT_URL)
    assert response.status_code == 401


def test_export_of_past_and_upcoming_bookings_alike(user, user_client):
    past = BookingFactory(user=user, session=SessionFactory(price=0))
    type(past.session).objects.filter(pk=past.session.pk).update(
        start_time=timezone.now() - timedelta(days=30)
    )
    cancelled = BookingFactory(user=user, status="cancelled")

    ids = {booking["id"] for booking in user_client.get(EXPORT_URL).json()["bookings"]}

    assert ids == {past.pk, cancelled.pk}


def test_events_name_staff_and_the_system_by_role_only(user, user_client):
    staff = User.objects.create_superuser("supportmona", "mona@example.org", "a-long-pass-1")
    cancelled = BookingFactory(user=user, session=SessionFactory(price=0))
    booking_cancel(booking_id=cancelled.pk, actor=staff, as_staff=True)
    hold = BookingFactory(user=user, status="pending", payment_status="unpaid")
    Booking.objects.filter(pk=hold.pk).update(
        created_at=timezone.now() - timedelta(hours=1), hold_expires_at=timezone.now()
    )
    bookings_expire_stale(user=user)

    response = user_client.get(EXPORT_URL)

    events = {b["id"]: [e["actor"] for e in b["events"]] for b in response.json()["bookings"]}
    assert events == {cancelled.pk: ["staff"], hold.pk: ["system"]}
    assert "supportmona" not in response.content.decode()
    assert "mona@example.org" not in response.content.decode()


def test_export_lists_the_reviews_the_user_wrote_and_no_one_elses(user, user_client):
    from backend.tests.reviews_support import attended_booking, review_of

    mine = review_of(attended_booking(user=user), 4, "Clear and kind.")
    review_of(attended_booking(), 2, "Someone else's words.")
    body = user_client.get(EXPORT_URL).json()
    assert [(r["id"], r["rating"], r["comment"]) for r in body["reviews"]] == [
        (mine.pk, 4, "Clear and kind.")
    ]
