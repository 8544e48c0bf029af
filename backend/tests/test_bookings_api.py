"""Bookings through the API: create, read, update, confirm, cancel, visibility, query budgets."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.models import Booking, Session
from backend.tests.factories import (
    BookingFactory,
    CreatorFactory,
    SessionFactory,
    UserFactory,
)
from backend.tests.support import auth_client, backdate, expire_hold

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
    "currency",
    "notes",
    "created_at",
    "confirmed_at",
    "cancelled_at",
}


def snapshot(booking: Booking) -> dict:
    booking.refresh_from_db()
    return {
        field: getattr(booking, field)
        for field in ("seats", "status", "payment_status", "amount", "notes", "cancelled_at")
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


# --- read ----------------------------------------------------------------------------------


def test_list_shows_only_my_bookings_newest_first(user_client, user):
    mine_old = BookingFactory(user=user)
    mine_new = BookingFactory(user=user)
    BookingFactory()
    backdate(mine_old, created_at=timedelta(days=1))
    for url in ("/api/bookings/", "/api/bookings/my_bookings/"):
        response = user_client.get(url)
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 2
        assert [b["id"] for b in body["results"]] == [mine_new.pk, mine_old.pk]


def test_list_filters_by_status(user_client, user):
    confirmed = BookingFactory(user=user)
    BookingFactory(user=user, status="cancelled")
    response = user_client.get("/api/bookings/?status=confirmed")
    assert [b["id"] for b in response.json()["results"]] == [confirmed.pk]
    assert user_client.get("/api/bookings/?status=bogus").status_code == 400


def test_active_and_past(user_client, user):
    now = timezone.now()
    soon = BookingFactory(user=user, session=SessionFactory(start_time=now + timedelta(days=1)))
    later = BookingFactory(
        user=user,
        session=SessionFactory(start_time=now + timedelta(days=2)),
        status="pending",
        payment_status="unpaid",
    )
    BookingFactory(user=user, status="cancelled")
    stale = BookingFactory(user=user, status="pending", payment_status="unpaid")
    expire_hold(stale)
    # Started but not ended: neither active nor past.
    running = SessionFactory(start_time=now - timedelta(minutes=30), duration_minutes=60)
    BookingFactory(user=user, session=running)
    ended_long_ago = BookingFactory(
        user=user, session=SessionFactory(start_time=now - timedelta(days=3))
    )
    ended_recently = BookingFactory(
        user=user,
        session=SessionFactory(start_time=now - timedelta(minutes=90), duration_minutes=60),
        status="cancelled",
    )
    BookingFactory(session=SessionFactory(start_time=now - timedelta(days=3)))  # not mine

    active = user_client.get("/api/bookings/active/").json()
    assert [b["id"] for b in active["results"]] == [soon.pk, later.pk]
    past = user_client.get("/api/bookings/past/").json()
    assert [b["id"] for b in past["results"]] == [ended_recently.pk, ended_long_ago.pk]


@pytest.mark.parametrize(
    "url",
    [
        "/api/bookings/",
        "/api/bookings/my_bookings/",
        "/api/bookings/active/",
        "/api/bookings/past/",
    ],
)
def test_list_endpoints_use_a_fixed_number_of_queries(
    user, url, django_assert_num_queries, is_postgres
):
    past_start = timezone.now() - timedelta(days=2)
    for index in range(6):
        start = past_start if index % 2 else timezone.now() + timedelta(days=index + 1)
        BookingFactory(user=user, session=SessionFactory(start_time=start))
    client = auth_client(user)
    # JWT user + page count + page rows (reads never write: no expiry UPDATE).
    expected = 3
    for page_size in (1, 100):
        with django_assert_num_queries(expected):
            response = client.get(url, {"page_size": page_size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == (
            1 if page_size == 1 else response.json()["count"]
        )


def test_detail_for_user_and_creator_404_for_others(user, creator):
    booking = BookingFactory(user=user, session=SessionFactory(creator=creator))
    for client in (auth_client(user), auth_client(creator)):
        response = client.get(f"/api/bookings/{booking.pk}/")
        assert response.status_code == 200
        assert response.json()["id"] == booking.pk
    for stranger in (UserFactory(), CreatorFactory()):
        response = auth_client(stranger).get(f"/api/bookings/{booking.pk}/")
        assert response.status_code == 404
        assert response.json() == {"detail": "Booking not found.", "code": "not_found"}


@pytest.mark.parametrize("pk", ["999999", "abc", "9223372036854775808", "1.ics"])
def test_unknown_or_malformed_id_is_json_404(user_client, pk):
    response = user_client.get(f"/api/bookings/{pk}/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_a_stale_pending_booking_reads_as_expired_and_the_expiry_job_marks_it(user_client, user):
    from django.core.management import call_command

    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    expire_hold(booking)
    response = user_client.get(f"/api/bookings/{booking.pk}/")
    assert response.json()["status"] == "expired"
    assert user_client.get("/api/bookings/active/").json()["count"] == 0
    booking.refresh_from_db()
    assert booking.status == "pending"  # a read never writes

    call_command("expire_bookings")
    booking.refresh_from_db()
    assert booking.status == "expired"
    assert list(booking.events.values_list("reason", "actor", "to_status")) == [
        ("hold_expired", None, "expired")
    ]


def test_expire_bookings_command(capsys):
    fresh = BookingFactory(status="pending", payment_status="unpaid")
    stale = BookingFactory(status="pending", payment_status="unpaid")
    confirmed = BookingFactory()
    expire_hold(stale)
    backdate(confirmed, created_at=timedelta(days=9))
    from django.core.management import call_command

    call_command("expire_bookings")
    assert capsys.readouterr().out.strip() == "Expired 1 booking(s)."
    assert Booking.objects.get(pk=stale.pk).status == "expired"
    assert Booking.objects.get(pk=fresh.pk).status == "pending"
    assert Booking.objects.get(pk=confirmed.pk).status == "confirmed"


# --- update --------------------------------------------------------------------------------


def test_user_updates_notes(user_client, user):
    booking = BookingFactory(user=user, notes="old")
    response = user_client.patch(f"/api/bookings/{booking.pk}/", {"notes": "new"})
    assert response.status_code == 200
    assert response.json()["notes"] == "new"
    booking.refresh_from_db()
    assert booking.notes == "new"


def test_seats_change_while_pending_recomputes_amount_from_booking_time_price(user_client, user):
    session = SessionFactory(price=Decimal("20.00"), capacity=5)
    booking = BookingFactory(
        user=user, session=session, seats=2, status="pending", payment_status="unpaid"
    )
    # A later price change does not touch the booking: 20.00 a seat stays.
    Session.objects.filter(pk=session.pk).update(price=Decimal("99.00"))
    response = user_client.put(f"/api/bookings/{booking.pk}/", {"seats": 4, "notes": "x"})
    assert response.status_code == 200
    assert response.json()["seats"] == 4
    assert response.json()["amount"] == "80.00"
    booking.refresh_from_db()
    assert (booking.seats, booking.amount, booking.notes) == (4, Decimal("80.00"), "x")


def test_seats_change_is_checked_against_capacity(user_client, user):
    session = SessionFactory(capacity=4)
    BookingFactory(session=session, seats=2)
    booking = BookingFactory(
        user=user, session=session, seats=1, status="pending", payment_status="unpaid"
    )
    before = snapshot(booking)
    response = user_client.patch(f"/api/bookings/{booking.pk}/", {"seats": 3})
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Only 2 seat(s) left for this session.",
        "code": "not_enough_seats",
    }
    assert snapshot(booking) == before
    # Its own seat counts as free for the change: 1 -> 2 fits exactly.
    assert user_client.patch(f"/api/bookings/{booking.pk}/", {"seats": 2}).status_code == 200


@pytest.mark.parametrize(
    ("status", "payment_status", "code"),
    [
        ("confirmed", "not_required", "seats_locked"),
        ("confirmed", "paid", "seats_locked"),
        ("pending", "failed", "seats_locked"),
        ("pending", "paid", "seats_locked"),
        ("cancelled", "unpaid", "not_active"),
        ("expired", "unpaid", "not_active"),
    ],
)
def test_seats_change_refused_unless_pending_and_unpaid(
    user_client, user, status, payment_status, code
):
    booking = BookingFactory(user=user, status=status, payment_status=payment_status)
    before = snapshot(booking)
    response = user_client.patch(f"/api/bookings/{booking.pk}/", {"seats": 2})
    assert response.status_code == 409
    assert response.json()["code"] == code
    assert snapshot(booking) == before


def test_read_only_fields_are_refused_on_update(user_client, user):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    before = snapshot(booking)
    response = user_client.patch(
        f"/api/bookings/{booking.pk}/",
        {"status": "confirmed", "payment_status": "paid", "amount": "0.00"},
    )
    assert response.status_code == 400  # was ignored (200); now refused (test_booking_update.py)
    assert snapshot(booking) == before


@pytest.mark.parametrize("payload", [{"seats": 0}, {"seats": 11}, {"seats": "x"}, {"notes": None}])
def test_invalid_update_is_400_and_changes_nothing(user_client, user, payload):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    before = snapshot(booking)
    response = user_client.patch(f"/api/bookings/{booking.pk}/", payload, format="json")
    assert response.status_code == 400
    assert snapshot(booking) == before


def test_creator_may_not_update_and_others_get_404(user, creator):
    booking = BookingFactory(
        user=user,
        session=SessionFactory(creator=creator),
        status="pending",
        payment_status="unpaid",
        notes="mine",
    )
    before = snapshot(booking)
    response = auth_client(creator).patch(f"/api/bookings/{booking.pk}/", {"notes": "theirs"})
    assert response.status_code == 403
    response = auth_client(UserFactory()).patch(f"/api/bookings/{booking.pk}/", {"seats": 2})
    assert response.status_code == 404
    response = auth_client(UserFactory()).put(f"/api/bookings/{booking.pk}/", {"notes": "x"})
    assert response.status_code == 404
    assert snapshot(booking) == before


# --- confirm and cancel --------------------------------------------------------------------


def test_creator_confirms_a_pending_booking_that_needs_no_payment(user, creator):
    booking = BookingFactory(
        user=user,
        session=SessionFactory(creator=creator),
        status="pending",
        payment_status="not_required",
    )
    response = auth_client(creator).post(f"/api/bookings/{booking.pk}/confirm/")
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed"
    assert response.json()["confirmed_at"] is not None
    booking.refresh_from_db()
    assert booking.status == "confirmed"


def test_confirming_an_unpaid_booking_of_a_paid_session_is_409(creator):
    booking = BookingFactory(
        session=SessionFactory(creator=creator), status="pending", payment_status="unpaid"
    )
    before = snapshot(booking)
    response = auth_client(creator).post(f"/api/bookings/{booking.pk}/confirm/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "This booking is for a paid session and has not been paid yet.",
        "code": "unpaid",
    }
    assert snapshot(booking) == before


def test_booking_user_cannot_confirm_and_strangers_get_404(user):
    booking = BookingFactory(user=user, status="pending", payment_status="not_required")
    before = snapshot(booking)
    assert auth_client(user).post(f"/api/bookings/{booking.pk}/confirm/").status_code == 403
    stranger = auth_client(CreatorFactory())
    assert stranger.post(f"/api/bookings/{booking.pk}/confirm/").status_code == 404
    assert snapshot(booking) == before


def test_user_cancels_and_the_seat_is_free_at_once(user_client, user):
    session = SessionFactory(capacity=1, price=Decimal("0.00"))
    booking = BookingFactory(user=user, session=session)
    other = auth_client(UserFactory())
    assert other.post("/api/bookings/", {"session": session.pk}).status_code == 409
    response = user_client.post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelled_at"] is not None
    assert other.post("/api/bookings/", {"session": session.pk}).status_code == 201


def test_user_cannot_cancel_after_the_start_but_the_creator_can(user, creator):
    session = SessionFactory(creator=creator, start_time=timezone.now() - timedelta(minutes=5))
    booking = BookingFactory(user=user, session=session)
    before = snapshot(booking)
    response = auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "session_started"
    assert snapshot(booking) == before
    assert auth_client(creator).post(f"/api/bookings/{booking.pk}/cancel/").status_code == 200


def test_strangers_cannot_cancel(user):
    booking = BookingFactory(user=user)
    before = snapshot(booking)
    response = auth_client(UserFactory()).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 404
    assert snapshot(booking) == before


def test_cancelling_a_paid_booking_calls_the_refund_hook(user, monkeypatch):
    refunded = []

    def fake_refund(*, booking, actor):
        refunded.append(booking.pk)
        booking.payment_status = Booking.PaymentStatus.REFUNDED
        booking.save(update_fields=["payment_status", "updated_at"])

    monkeypatch.setattr("backend.services.refunds.refund_booking", fake_refund)
    booking = BookingFactory(user=user, payment_status="paid")
    response = auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["payment_status"] == "refunded"
    assert refunded == [booking.pk]


def test_unpaid_cancellation_does_not_call_the_refund_hook(user, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "backend.services.refunds.refund_booking",
        lambda *, booking, actor: calls.append(booking.pk),
    )
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    assert auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/").status_code == 200
    assert calls == []


def test_paid_booking_inside_the_cancellation_window_is_409_for_the_user(user, settings):
    settings.CANCELLATION_WINDOW_HOURS = 24
    session = SessionFactory(start_time=timezone.now() + timedelta(hours=2))
    booking = BookingFactory(user=user, session=session, payment_status="paid")
    before = snapshot(booking)
    response = auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "cancellation_window"
    assert snapshot(booking) == before


# --- visibility, everywhere ----------------------------------------------------------------

DETAIL_ENDPOINTS = [
    ("get", "/api/bookings/{}/"),
    ("patch", "/api/bookings/{}/"),
    ("put", "/api/bookings/{}/"),
    ("post", "/api/bookings/{}/confirm/"),
    ("post", "/api/bookings/{}/cancel/"),
    ("get", "/api/bookings/{}/calendar.ics"),
]


def call(client, method, template, pk):
    data = {"notes": "changed", "seats": 2} if method in ("patch", "put") else None
    return getattr(client, method)(template.format(pk), data, format="json")


@pytest.mark.parametrize("stranger_factory", [UserFactory, CreatorFactory])
@pytest.mark.parametrize(("method", "template"), DETAIL_ENDPOINTS)
def test_others_bookings_are_404_on_every_endpoint(stranger_factory, method, template):
    # Pending and needing no payment: confirm and cancel would succeed for the right person.
    booking = BookingFactory(status="pending", payment_status="not_required", notes="keep")
    before = snapshot(booking)
    response = call(auth_client(stranger_factory()), method, template, booking.pk)
    assert response.status_code == 404
    assert response.json() == {"detail": "Booking not found.", "code": "not_found"}
    assert snapshot(booking) == before


@pytest.mark.parametrize("pk", ["0", "999999", "9223372036854775807", "9223372036854775808"])
@pytest.mark.parametrize(("method", "template"), DETAIL_ENDPOINTS)
def test_unknown_ids_are_404_on_every_endpoint(user_client, method, template, pk):
    response = call(user_client, method, template, pk)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(("method", "template"), DETAIL_ENDPOINTS)
def test_staff_get_no_api_access_to_others_bookings(method, template):
    """Staff work in the admin; the API shows a booking to its user and the creator only."""
    booking = BookingFactory(status="pending", payment_status="not_required", notes="keep")
    before = snapshot(booking)
    staff = UserFactory(is_staff=True, is_superuser=True)
    assert call(auth_client(staff), method, template, booking.pk).status_code == 404
    assert snapshot(booking) == before


def test_putting_back_the_received_object_changes_only_notes(user_client, user):
    booking = BookingFactory(user=user, seats=2, notes="old")
    received = user_client.get(f"/api/bookings/{booking.pk}/").json()
    received["notes"] = "new"
    response = user_client.put(f"/api/bookings/{booking.pk}/", received, format="json")
    assert response.status_code == 200
    assert response.json() == {**received, "notes": "new"}
    booking.refresh_from_db()
    assert (booking.seats, booking.notes, booking.status) == (2, "new", "confirmed")
