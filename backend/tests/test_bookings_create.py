"""Creating bookings through the API: holds, validation, refusals and conflicts."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.models import Booking, OutboxMessage, Session, WebhookDelivery, WebhookSubscription
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client, expire_hold

pytestmark = pytest.mark.django_db


BOOKING_FIELDS = {
    "id",
    "session",
    "user",
    "seats",
    "status",
    "payment_status",
    "amount",
    "refunded_amount",
    "refund_percent",
    "currency",
    "notes",
    "created_at",
    "confirmed_at",
    "cancelled_at",
    "hold_expires_at",
}


# --- create --------------------------------------------------------------------------------


def test_free_session_booking_is_confirmed_at_once(user_client, user):
    session = SessionFactory(price=Decimal("0.00"), currency="eur")
    response = user_client.post(
        "/api/bookings/", {"session": session.pk, "seats": 2, "notes": "Vegetarian"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == BOOKING_FIELDS
    booking = Booking.objects.get()
    assert body["id"] == booking.pk
    assert body["session"] == {
        "id": session.pk,
        "title": session.title,
        "start_time": session.start_time.isoformat().replace("+00:00", "Z"),
        "end_time": session.end_time.isoformat().replace("+00:00", "Z"),
        "creator": {
            "id": session.creator.pk,
            "username": session.creator.username,
            "first_name": session.creator.first_name,
            "last_name": session.creator.last_name,
            "avatar": None,
        },
    }
    assert body["user"] == {"id": user.pk, "username": user.username}
    assert body["seats"] == 2
    assert body["status"] == "confirmed"
    assert body["payment_status"] == "not_required"
    assert body["amount"] == "0.00"
    assert body["currency"] == "EUR"
    assert body["notes"] == "Vegetarian"
    assert body["confirmed_at"] is not None
    assert body["cancelled_at"] is None
    assert booking.user == user
    assert booking.status == Booking.Status.CONFIRMED


def test_paid_session_booking_is_held_unpaid(user_client):
    session = SessionFactory(price=Decimal("25.00"))
    response = user_client.post("/api/bookings/", {"session": session.pk, "seats": 3})
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending"
    assert body["payment_status"] == "unpaid"
    assert body["amount"] == "75.00"
    assert body["currency"] == "USD"
    assert body["notes"] == ""
    assert body["confirmed_at"] is None


def test_seats_default_to_one(user_client):
    session = SessionFactory(price=Decimal("12.50"))
    response = user_client.post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 201
    assert response.json()["seats"] == 1
    assert response.json()["amount"] == "12.50"


def test_status_payment_status_and_amount_are_not_writable_on_create(user_client):
    session = SessionFactory(price=Decimal("25.00"))
    response = user_client.post(
        "/api/bookings/",
        {
            "session": session.pk,
            "status": "confirmed",
            "payment_status": "paid",
            "amount": "0.01",
        },
    )
    assert response.status_code == 201
    booking = Booking.objects.get()
    assert (booking.status, booking.payment_status, booking.amount) == (
        "pending",
        "unpaid",
        Decimal("25.00"),
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "session"),
        ({"session": "abc"}, "session"),
        ({"session": None}, "session"),
        ({"session": 0}, "session"),
        ({"session": 2**63}, "session"),
        ({"seats": 0}, "seats"),
        ({"seats": 11}, "seats"),
        ({"seats": -1}, "seats"),
        ({"seats": "two"}, "seats"),
        ({"seats": True}, "seats"),
        ({"seats": 1.5}, "seats"),
        ({"notes": "x" * 1001}, "notes"),
        ({"notes": None}, "notes"),
        ({"notes": "null\x00byte"}, "notes"),
    ],
)
def test_invalid_create_payload_is_400_and_creates_nothing(user_client, payload, field):
    session = SessionFactory()
    data = {"session": session.pk, **payload}
    if payload == {}:
        data = {}
    response = user_client.post("/api/bookings/", data, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Booking.objects.count() == 0


def test_anonymous_cannot_book_or_list(api_client):
    session = SessionFactory()
    assert api_client.post("/api/bookings/", {"session": session.pk}).status_code == 401
    assert api_client.get("/api/bookings/").status_code == 401
    assert Booking.objects.count() == 0


def test_unknown_session_is_404(user_client):
    response = user_client.post("/api/bookings/", {"session": 987654})
    assert response.status_code == 404
    assert response.json() == {"detail": "Session not found.", "code": "not_found"}


def test_someone_elses_draft_is_404(user_client):
    session = SessionFactory(status=Session.Status.DRAFT)
    response = user_client.post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 404
    assert Booking.objects.count() == 0


@pytest.mark.parametrize(
    ("session_kwargs", "code"),
    [
        ({"status": Session.Status.CANCELLED}, "not_bookable"),
        ({"start_time_delta": timedelta(minutes=-1)}, "session_started"),
    ],
)
def test_unbookable_sessions_are_409(user_client, session_kwargs, code):
    delta = session_kwargs.pop("start_time_delta", None)
    if delta is not None:
        session_kwargs["start_time"] = timezone.now() + delta
    session = SessionFactory(**session_kwargs)
    response = user_client.post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 409
    assert response.json()["code"] == code
    assert Booking.objects.count() == 0


def test_creator_cannot_book_own_session(creator, creator_client):
    session = SessionFactory(creator=creator)
    response = creator_client.post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 409
    assert response.json() == {"detail": "You cannot book your own session.", "code": "own_session"}
    assert Booking.objects.count() == 0


def test_creator_can_book_someone_elses_session(creator_client):
    session = SessionFactory()
    assert creator_client.post("/api/bookings/", {"session": session.pk}).status_code == 201


def test_sold_out_and_not_enough_seats_are_409(user_client):
    session = SessionFactory(capacity=3)
    BookingFactory(session=session, seats=2)
    response = user_client.post("/api/bookings/", {"session": session.pk, "seats": 2})
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Only 1 seat(s) left for this session.",
        "code": "not_enough_seats",
    }
    BookingFactory(session=session, seats=1)
    response = user_client.post("/api/bookings/", {"session": session.pk, "seats": 1})
    assert response.status_code == 409
    assert response.json() == {"detail": "This session is sold out.", "code": "sold_out"}
    assert Booking.objects.count() == 2


def test_pending_bookings_hold_seats_only_within_the_hold(user_client):
    session = SessionFactory(capacity=2)
    held = BookingFactory(session=session, seats=2, status="pending", payment_status="unpaid")
    assert user_client.post("/api/bookings/", {"session": session.pk}).status_code == 409
    expire_hold(held)
    response = user_client.post("/api/bookings/", {"session": session.pk, "seats": 2})
    assert response.status_code == 201
    held.refresh_from_db()
    assert held.status == "expired"


def test_second_active_booking_of_the_same_session_is_409(user_client, user):
    session = SessionFactory()
    BookingFactory(session=session, user=user)
    response = user_client.post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 409
    assert response.json()["code"] == "already_booked"
    assert Booking.objects.count() == 1


def test_booking_again_after_cancelling_is_allowed(user_client, user):
    session = SessionFactory()
    BookingFactory(session=session, user=user, status="cancelled")
    assert user_client.post("/api/bookings/", {"session": session.pk}).status_code == 201
    assert Booking.objects.filter(user=user, session=session).count() == 2


def test_unique_constraint_race_is_409_not_500(user, monkeypatch):
    """The constraint behind the lock: if the existence check were missed, still a 409."""
    session = SessionFactory()
    BookingFactory(session=session, user=user)
    monkeypatch.setattr(
        Session,
        "bookings",
        property(lambda s: _BlindManager(s)),
        raising=False,
    )
    response = auth_client(user).post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 409
    assert response.json()["code"] == "already_booked"
    assert Booking.objects.count() == 1


class _BlindManager:
    """session.bookings whose 'already booked' check sees nothing, to reach the constraint."""

    def __init__(self, session):
        self.session = session

    def filter(self, *args, **kwargs):
        queryset = Booking.objects.filter(session=self.session).filter(*args, **kwargs)
        if "user" in kwargs:
            return queryset.none()
        return queryset


# --- query budget --------------------------------------------------------------------------


def subscription_lookups(queries) -> int:
    return sum('FROM "webhook_subscriptions"' in query["sql"] for query in queries)


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        # The JWT user; the user and session locks; stale holds; already booked; (paid: the
        # unpaid-hold count); waitlist; seats taken; (paid: the hold's end); the booking; one
        # webhook-subscription lookup; its event row; the waitlist update; two e-mails' outbox
        # rows; 5 savepoints and 5 releases. PostgreSQL adds a transaction check per lock.
        ("0.00", 21),
        ("20.00", 23),
    ],
)
def test_booking_creation_takes_a_fixed_number_of_queries(
    user, price, expected, django_assert_num_queries, is_postgres
):
    session = SessionFactory(price=Decimal(price))
    client = auth_client(user)
    with django_assert_num_queries(expected + (2 if is_postgres else 0)) as captured:
        response = client.post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 201
    # A free booking is created and confirmed in one move: one lookup for both events.
    assert subscription_lookups(captured.captured_queries) == 1


def test_one_subscription_lookup_for_all_events_of_a_booking_write(
    user, django_assert_num_queries, is_postgres
):
    session = SessionFactory(price=Decimal("0.00"))
    mine = WebhookSubscription.objects.create(
        owner=session.creator,
        url="https://hooks.example.com/mine",
        events=["booking.created", "booking.confirmed"],
        secret="s1",
    )
    staff = WebhookSubscription.objects.create(
        owner=UserFactory(is_staff=True),
        url="https://hooks.example.com/staff",
        events=["booking.confirmed"],
        secret="s2",
    )
    client = auth_client(user)
    # As without subscribers (21), plus 2 events and 3 deliveries, each with its outbox row
    # in a savepoint (4 queries a delivery).
    with django_assert_num_queries(21 + 2 + 3 * 4 + (2 if is_postgres else 0)) as captured:
        response = client.post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 201
    assert subscription_lookups(captured.captured_queries) == 1
    deliveries = WebhookDelivery.objects.order_by("event_id", "subscription_id")
    assert [(d.event.type, d.subscription_id) for d in deliveries] == [
        ("booking.created", mine.pk),
        ("booking.confirmed", mine.pk),
        ("booking.confirmed", staff.pk),
    ]
    assert OutboxMessage.objects.filter(task="webhooks.deliver").count() == 3
    booking_ids = {d.event.data["booking"]["id"] for d in deliveries}
    assert booking_ids == {response.json()["id"]}
