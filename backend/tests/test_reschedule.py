"""POST bookings/{id}/reschedule/: a confirmed booking moves to another session (issue 19)."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from backend import booking_rules
from backend.models import Booking, Payment, Session
from backend.services.reschedule import booking_reschedule
from backend.tests.factories import (
    BookingFactory,
    CreatorFactory,
    SessionFactory,
    UserFactory,
)
from backend.tests.payments_support import book, pay
from backend.tests.support import auth_client, run_concurrently

pytestmark = pytest.mark.django_db


def url(booking):
    return f"/api/bookings/{booking.pk}/reschedule/"


def sequence_of(client, booking) -> int:
    ics = client.get(f"/api/bookings/{booking.pk}/calendar.ics").content.decode()
    found = re.search(r"^SEQUENCE:(\d+)", ics, re.M)
    assert found is not None, ics
    return int(found.group(1))


def state(booking):
    """Everything a move may change, to assert that a refused one changed nothing."""
    fresh = Booking.objects.get(pk=booking.pk)
    return {
        "row": Booking.objects.filter(pk=booking.pk).values().get(),
        "events": fresh.events.count(),
        "payments": sorted(Payment.objects.filter(booking=fresh).values_list("id", "status")),
    }


@pytest.fixture
def pair():
    """Two upcoming sessions of one creator at one price, and a user with 2 seats on the first."""
    creator = CreatorFactory(email="host@example.com")
    source = SessionFactory(creator=creator, price=Decimal("30.00"), capacity=5)
    target = SessionFactory(
        creator=creator,
        price=Decimal("30.00"),
        capacity=5,
        start_time=timezone.now() + timedelta(days=14),
    )
    user = UserFactory(email="pat@example.com")
    booking = BookingFactory(session=source, user=user, seats=2, payment_status="not_required")
    return creator, source, target, user, booking


@pytest.mark.parametrize("who", ["user", "creator"])
def test_a_booking_moves_with_its_seats_payment_and_id(
    pair, who, django_capture_on_commit_callbacks
):
    creator, source, target, user, booking = pair
    actor = user if who == "user" else creator
    client = auth_client(actor)
    sequence_before = sequence_of(auth_client(user), booking)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(booking), {"session": target.pk}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["session"]["id"], body["seats"], body["amount"]) == (
        booking.pk,
        target.pk,
        2,
        "60.00",
    )
    assert booking_rules.seats_taken(session=source) == 0
    assert booking_rules.seats_taken(session=target) == 2
    assert sequence_of(auth_client(user), booking) > sequence_before

    assert sorted(message.to[0] for message in mail.outbox) == [
        "host@example.com",
        "pat@example.com",
    ]
    assert all(str(source.title) in message.body for message in mail.outbox)
    (event,) = Booking.objects.get(pk=booking.pk).events.filter(reason__startswith="rescheduled")
    assert (
        event.reason
        == f"rescheduled_by_{'owner' if who == 'user' else 'creator'}_from_session_{source.pk}"
    )
    assert event.actor == actor
    events = auth_client(user).get(f"/api/bookings/{booking.pk}/events/").json()["results"]
    assert events[-1]["reason"] == event.reason


def test_a_full_target_is_409_and_the_booking_is_unchanged(
    pair, django_capture_on_commit_callbacks
):
    _creator, source, target, user, booking = pair
    BookingFactory(session=target, seats=4)  # 1 of 5 left, the booking has 2
    before = state(booking)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(user).post(url(booking), {"session": target.pk}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "not_enough_seats")
    assert state(booking) == before
    assert mail.outbox == []
    assert booking_rules.seats_taken(session=source) == 2


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": Decimal("35.00")}, "price_mismatch"),
        ({"currency": "EUR"}, "price_mismatch"),
        ({"status": Session.Status.CANCELLED}, "not_bookable"),
        ({"start_time_ago": True}, "session_started"),
        ({"other_creator": True}, "other_creator"),
    ],
    ids=["other-price", "other-currency", "cancelled", "started", "other-creator"],
)
def test_a_target_that_does_not_fit_is_409(pair, change, code):
    creator, _source, target, _user, booking = pair
    if change.pop("start_time_ago", False):
        change["start_time"] = timezone.now() - timedelta(minutes=5)
    if change.pop("other_creator", False):
        change["creator"] = CreatorFactory()
    Session.objects.filter(pk=target.pk).update(**change)
    before = state(booking)
    response = auth_client(creator).post(url(booking), {"session": target.pk}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, code)
    assert state(booking) == before


def test_the_same_session_a_pending_booking_and_a_double_booking_are_409(pair):
    creator, source, target, user, booking = pair
    client = auth_client(user)
    same = client.post(url(booking), {"session": source.pk}, format="json")
    assert (same.status_code, same.json()["code"]) == (409, "same_session")

    BookingFactory(session=target, user=user)
    twice = client.post(url(booking), {"session": target.pk}, format="json")
    assert (twice.status_code, twice.json()["code"]) == (409, "already_booked")

    pending = BookingFactory(
        session=SessionFactory(creator=creator, price=Decimal("30.00")),
        user=user,
        status="pending",
        payment_status="unpaid",
    )
    response = client.post(url(pending), {"session": target.pk}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "not_reschedulable")


def test_unknown_or_invisible_targets_and_strangers_are_404_bad_input_400(pair):
    creator, source, target, user, booking = pair
    draft = SessionFactory(creator=creator, price=Decimal("30.00"), status="draft")
    client = auth_client(user)
    assert client.post(url(booking), {"session": draft.pk}, format="json").status_code == 404
    assert client.post(url(booking), {"session": 999999}, format="json").status_code == 404
    stranger = auth_client(UserFactory())
    assert stranger.post(url(booking), {"session": target.pk}, format="json").status_code == 404
    for body in ({}, {"session": "next"}, {"session": 0}):
        response = client.post(url(booking), body, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert Booking.objects.get(pk=booking.pk).session_id == source.pk


def test_the_user_moves_a_paid_booking_only_while_it_would_be_refunded_in_full(
    fake_stripe, django_capture_on_commit_callbacks
):
    creator = CreatorFactory()
    source = SessionFactory(creator=creator, price=Decimal("30.00"))
    target = SessionFactory(creator=creator, price=Decimal("30.00"))
    user = UserFactory()
    booking, _ = pay(fake_stripe, user, book(user, source))
    Session.objects.filter(pk=source.pk).update(start_time=timezone.now() + timedelta(hours=3))
    before = state(booking)

    response = auth_client(user).post(url(booking), {"session": target.pk}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "reschedule_window")
    assert state(booking) == before

    # The creator may move it at any time; the payment stays, nothing goes to Stripe.
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(creator).post(url(booking), {"session": target.pk}, format="json")
    assert response.status_code == 200
    booking.refresh_from_db()
    assert (booking.session_id, booking.payment_status, booking.amount) == (
        target.pk,
        "paid",
        Decimal("30.00"),
    )
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []
    # The user did not choose the new date: their cancellation refunds in full.
    assert booking.session_moved_at is not None


# --- concurrency (PostgreSQL) ----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_reschedule_racing_bookings_of_the_target_never_oversells():
    """Seven users race for the target's 4 seats while a 2-seat booking moves into it: the
    seats taken never exceed the capacity, and the moved booking is counted exactly once."""
    for _round in range(3):
        creator = CreatorFactory()
        source = SessionFactory(creator=creator, price=Decimal("0"), capacity=5)
        target = SessionFactory(creator=creator, price=Decimal("0"), capacity=4)
        mover = BookingFactory(session=source, seats=2)
        users = [UserFactory() for _ in range(7)]

        def move(booking_id=mover.pk, creator=creator, target_id=target.pk):
            try:
                booking_reschedule(booking_id=booking_id, actor=creator, session_id=target_id)
            except Exception as error:  # the test counts outcomes
                return getattr(error, "code", repr(error))
            return "moved"

        def book_target(client, target_id=target.pk):
            def task():
                response = client.post("/api/bookings/", {"session": target_id})
                return response.status_code

            return task

        results = run_concurrently(
            [move, *(book_target(auth_client(u)) for u in users)], lock_timeout="30s"
        )
        moved, bookings = results[0], results[1:]
        assert moved in ("moved", "not_enough_seats", "sold_out"), moved
        assert set(bookings) <= {201, 409}, bookings
        mover_session = Booking.objects.get(pk=mover.pk).session_id
        taken = booking_rules.seats_taken(session=target)
        assert taken <= 4
        assert taken == bookings.count(201) + (2 if moved == "moved" else 0)
        assert mover_session == (target.pk if moved == "moved" else source.pk)
        assert booking_rules.seats_taken(session=source) == (0 if moved == "moved" else 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_bookings_swapping_sessions_at_once_do_not_deadlock():
    """A -> B and B -> A together: both sessions are locked in id order by both, so one waits
    for the other instead of each holding the lock the other needs."""
    creator = CreatorFactory()
    first = SessionFactory(creator=creator, price=Decimal("0"), capacity=2)
    second = SessionFactory(creator=creator, price=Decimal("0"), capacity=2)
    a = BookingFactory(session=first, seats=1)
    b = BookingFactory(session=second, seats=1)

    def move(booking, target):
        def task():
            booking_reschedule(booking_id=booking.pk, actor=creator, session_id=target.pk)
            return "moved"

        return task

    for _round in range(5):
        results = run_concurrently(
            [move(a, second), move(b, first)], lock_timeout="10s", raise_errors=True
        )
        assert results == ["moved", "moved"]
        a.refresh_from_db()
        b.refresh_from_db()
        assert (a.session_id, b.session_id) == (second.pk, first.pk)
        a, b = b, a
        assert booking_rules.seats_taken(session=first) == 1
        assert booking_rules.seats_taken(session=second) == 1
