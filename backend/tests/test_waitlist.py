"""The waitlist (CONTRACT.md, "Waitlist"): joining, leaving, positions, the creator's view, and
the offers made when seats free up. Mails are counted at the receiving end (locmem outbox)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from backend import booking_rules
from backend.models import Booking, WaitlistEntry
from backend.services import waitlist as services
from backend.services.locking import lock_session
from backend.tasks.periodic import run_all_periodic_jobs
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import book as book_service
from backend.tests.payments_support import deliver, pay, start_payment
from backend.tests.support import auth_client, backdate

pytestmark = pytest.mark.django_db

ENTRY_FIELDS = {
    "id",
    "session",
    "seats",
    "status",
    "position",
    "offer_expires_at",
    "booking",
    "created_at",
}


def url(session):
    return f"/api/sessions/{session.pk}/waitlist/"


def full_session(*, capacity=1, price="20.00", **fields):
    """A published session whose `capacity` seats are taken by confirmed bookings."""
    session = SessionFactory(capacity=capacity, price=Decimal(price), **fields)
    paid = Decimal(price) > 0
    for _ in range(capacity):
        BookingFactory(
            session=session,
            status="confirmed",
            payment_status="paid" if paid else "not_required",
            confirmed_at=timezone.now(),
        )
    return session


def join(user, session, seats=1):
    return auth_client(user).post(url(session), {"seats": seats})


def entry_of(user, session):
    return WaitlistEntry.objects.get(user=user, session=session)


def cancel_a_free_booking(session):
    """A holder of a free confirmed booking cancels it (the API, so the hook runs)."""
    booking = session.bookings.filter(status="confirmed").order_by("id").first()
    response = auth_client(booking.user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200, response.json()
    return booking


def offers_mailed():
    return [message.to[0] for message in mail.outbox if "came free" in message.body]


# --- join, leave, position --------------------------------------------------------------------


def test_join_a_full_session_gives_the_entry_with_its_position():
    session = full_session()
    first, second = UserFactory(), UserFactory()
    response = join(first, session, seats=1)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == ENTRY_FIELDS
    assert body["session"]["id"] == session.pk
    assert (body["seats"], body["status"], body["position"]) == (1, "waiting", 1)
    assert (body["offer_expires_at"], body["booking"]) == (None, None)
    assert join(second, session, seats=2).json()["position"] == 2


def test_join_is_refused_while_the_seats_are_free():
    session = SessionFactory(capacity=3, price=Decimal("20.00"))
    BookingFactory(session=session, seats=2)
    user = UserFactory()
    response = join(user, session, seats=1)
    assert (response.status_code, response.json()["code"]) == (409, "seats_available")
    # Two seats are more than the one that is free: that is a wait.
    assert join(user, session, seats=2).status_code == 201
    assert WaitlistEntry.objects.filter(session=session).count() == 1


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("again", 409, "already_waiting"),
        ("booked", 409, "already_booked"),
        ("creator", 409, "own_session"),
    ],
)
def test_join_refusals_change_nothing(who, status, code):
    session = full_session(capacity=2)
    user = UserFactory()
    join(user, session)
    if who == "booked":
        user = session.bookings.first().user
    if who == "creator":
        user = session.creator
    before = list(WaitlistEntry.objects.values_list("id", "status"))
    response = join(user, session)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert list(WaitlistEntry.objects.values_list("id", "status")) == before


def test_join_bad_input_and_unknown_or_closed_sessions():
    session = full_session()
    user = UserFactory()
    response = join(user, session, seats=0)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"seats"}
    assert auth_client(user).post("/api/sessions/999999/waitlist/").status_code == 404
    draft = SessionFactory(status="draft")
    assert join(user, draft).status_code == 404
    started = full_session(start_time=timezone.now() - timedelta(minutes=5))
    assert join(user, started).json()["code"] == "session_started"
    assert not WaitlistEntry.objects.exists()
    anonymous = APIClient()
    assert anonymous.post(url(session), {"seats": 1}).status_code == 401
    assert anonymous.get("/api/waitlist/").status_code == 401


def test_leave_takes_the_entry_off_and_the_next_move_up():
    session = full_session()
    users = [UserFactory() for _ in range(3)]
    for user in users:
        join(user, session)
    response = auth_client(users[0]).delete(url(session))
    assert response.status_code == 204
    assert entry_of(users[0], session).status == "left"
    mine = auth_client(users[2]).get("/api/waitlist/").json()["results"]
    assert [(e["session"]["id"], e["position"]) for e in mine] == [(session.pk, 2)]
    # Not on it (any more): 404, nothing changes.
    response = auth_client(users[0]).delete(url(session))
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    # Leaving made room to join again, at the end.
    assert join(users[0], session).json()["position"] == 3


def test_my_waitlist_lists_every_status_latest_first_in_fixed_queries(django_assert_num_queries):
    user = UserFactory()
    sessions = [full_session() for _ in range(5)]
    for session in sessions:
        join(user, session)
    auth_client(user).delete(url(sessions[0]))
    client = auth_client(user)
    # The token's user, the count, the page (sessions and creators joined in).
    with django_assert_num_queries(3):
        page_five = client.get("/api/waitlist/").json()
    assert [e["session"]["id"] for e in page_five["results"]] == [s.pk for s in sessions[::-1]]
    assert [e["status"] for e in page_five["results"]] == ["waiting"] * 4 + ["left"]
    assert [e["position"] for e in page_five["results"]] == [1, 1, 1, 1, None]
    for session in (full_session(), full_session()):
        join(user, session)
    with django_assert_num_queries(3):
        assert client.get("/api/waitlist/").json()["count"] == 7


def test_the_creators_view_lists_who_waits_in_order(creator, django_assert_num_queries):
    session = full_session(creator=creator)
    users = [UserFactory() for _ in range(4)]
    for index, user in enumerate(users):
        join(user, session, seats=1 + index % 2)
    auth_client(users[1]).delete(url(session))
    client = auth_client(creator)
    # The token's user, the session (is it theirs), the count, the page (users joined in).
    with django_assert_num_queries(4):
        body = client.get(url(session)).json()
    assert body["count"] == 4
    assert [
        (e["user"]["username"], e["seats"], e["status"], e["position"]) for e in body["results"]
    ] == [
        (users[0].username, 1, "waiting", 1),
        (users[1].username, 2, "left", None),
        (users[2].username, 1, "waiting", 2),
        (users[3].username, 2, "waiting", 3),
    ]
    for _ in range(3):
        join(UserFactory(), session)
    with django_assert_num_queries(4):
        assert client.get(url(session)).json()["count"] == 7
    # Not the creator: it does not exist for them.
    assert auth_client(users[0]).get(url(session)).status_code == 404
    assert auth_client(UserFactory(role="creator")).get(url(session)).status_code == 404


def test_my_sessions_carries_waitlist_count(creator):
    session = full_session(creator=creator)
    other = full_session(creator=creator)
    for _ in range(3):
        join(UserFactory(), session)
    leaver = UserFactory()
    join(leaver, session)
    auth_client(leaver).delete(url(session))
    rows = auth_client(creator).get("/api/sessions/my_sessions/").json()["results"]
    counts = {row["id"]: row["waitlist_count"] for row in rows}
    assert counts == {session.pk: 3, other.pk: 0}


# --- offers -----------------------------------------------------------------------------------


def test_a_cancellation_offers_the_seat_to_the_first_in_line(django_capture_on_commit_callbacks):
    session = full_session(capacity=2, price="0.00")
    first, second = UserFactory(), UserFactory()
    join(first, session)
    join(second, session)
    with django_capture_on_commit_callbacks(execute=True):
        cancel_a_free_booking(session)
    # Free session: the offer is a confirmed booking, at once.
    entry = entry_of(first, session)
    assert entry.status == "booked"
    assert (entry.booking.status, entry.booking.payment_status) == ("confirmed", "not_required")
    assert entry_of(second, session).status == "waiting"
    assert booking_rules.seats_taken(session=session) == 2
    assert offers_mailed() == [first.email]


def test_a_paid_offer_holds_for_waitlist_offer_minutes_and_can_be_paid(
    settings, fake_stripe, django_capture_on_commit_callbacks
):
    settings.WAITLIST_OFFER_MINUTES = 120
    session = full_session(capacity=1, price="0.00")
    session.price = Decimal("25.00")
    session.save()
    waiter = UserFactory()
    join(waiter, session)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        cancel_a_free_booking(session)
    entry = entry_of(waiter, session)
    offer = entry.booking
    assert (entry.status, offer.status, offer.payment_status) == ("offered", "pending", "unpaid")
    assert offer.amount == Decimal("25.00")
    assert entry.offer_expires_at == offer.hold_expires_at
    assert before + timedelta(minutes=120) <= offer.hold_expires_at
    assert offer.hold_expires_at <= timezone.now() + timedelta(minutes=120)
    listed = auth_client(waiter).get("/api/waitlist/").json()["results"][0]
    assert listed["booking"] == offer.pk
    assert parse_datetime(listed["offer_expires_at"]) == offer.hold_expires_at
    assert offers_mailed() == [waiter.email]
    assert "pay booking" in mail.outbox[-1].body
    # Well past the usual 15-minute hold, still inside the offer: it can be paid.
    backdate(offer, created_at=timedelta(minutes=100))
    with django_capture_on_commit_callbacks(execute=True):
        paid, _intent = pay(fake_stripe, waiter, offer)
    assert (paid.status, paid.payment_status) == ("confirmed", "paid")
    assert entry_of(waiter, session).status == "booked"


def test_a_paid_offer_cannot_be_paid_after_its_window(fake_stripe):
    session = SessionFactory(capacity=1, price=Decimal("25.00"))
    BookingFactory(session=session, status="confirmed", payment_status="not_required")
    waiter = UserFactory()
    join(waiter, session)
    holder = session.bookings.get()
    auth_client(holder.user).post(f"/api/bookings/{holder.pk}/cancel/")
    offer = entry_of(waiter, session).booking
    backdate(offer, hold_expires_at=timedelta(seconds=1))
    response = auth_client(waiter).post("/api/payment/create-intent/", {"booking_id": offer.pk})
    assert (response.status_code, response.json()["code"]) == (409, "expired")
    assert not offer.payments.exists()


def test_an_expired_offer_passes_to_the_next_entry(django_capture_on_commit_callbacks):
    session = SessionFactory(capacity=1, price=Decimal("25.00"))
    holder = BookingFactory(session=session, status="confirmed", payment_status="not_required")
    first, second = UserFactory(), UserFactory()
    join(first, session)
    join(second, session)
    auth_client(holder.user).post(f"/api/bookings/{holder.pk}/cancel/")
    first_offer = entry_of(first, session).booking
    backdate(first_offer, hold_expires_at=timedelta(seconds=1))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        results = run_all_periodic_jobs(only=["bookings.expire"])
    assert results == {"bookings.expire": 1}
    first_offer.refresh_from_db()
    assert first_offer.status == "expired"
    assert entry_of(first, session).status == "expired"
    second_entry = entry_of(second, session)
    assert second_entry.status == "offered"
    assert second_entry.booking.status == "pending"
    assert offers_mailed() == [second.email]
    assert booking_rules.seats_taken(session=session) == 1
    # Running it again changes nothing and mails nobody.
    with django_capture_on_commit_callbacks(execute=True):
        run_all_periodic_jobs(only=["bookings.expire"])
    assert offers_mailed() == [second.email]
    assert Booking.objects.filter(session=session, status="pending").count() == 1


def test_a_lazily_expired_hold_is_offered_in_the_same_request():
    session = SessionFactory(capacity=1, price=Decimal("25.00"))
    holder = UserFactory()
    hold = Booking.objects.get(
        pk=auth_client(holder).post("/api/bookings/", {"session": session.pk}).json()["id"]
    )
    waiter = UserFactory()
    join(waiter, session)
    backdate(hold, hold_expires_at=timedelta(seconds=1))
    response = auth_client(holder).post(f"/api/bookings/{hold.pk}/cancel/")
    assert (response.status_code, response.json()["code"]) == (409, "expired")
    assert entry_of(waiter, session).status == "offered"


def test_a_new_booking_does_not_take_a_seat_the_waitlist_is_owed():
    session = SessionFactory(capacity=1, price=Decimal("25.00"))
    hold = BookingFactory(session=session, status="pending", payment_status="unpaid")
    waiter = UserFactory()
    join(waiter, session)
    backdate(hold, hold_expires_at=timedelta(seconds=1))
    latecomer = UserFactory()
    response = auth_client(latecomer).post("/api/bookings/", {"session": session.pk})
    assert (response.status_code, response.json()["code"]) == (409, "sold_out")
    assert entry_of(waiter, session).status == "offered"
    assert not Booking.objects.filter(user=latecomer).exists()


def test_capacity_raised_by_three_makes_three_offers(creator, django_capture_on_commit_callbacks):
    session = full_session(capacity=2, creator=creator)
    waiters = [UserFactory() for _ in range(5)]
    for waiter in waiters:
        join(waiter, session)
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(creator).patch(f"/api/sessions/{session.pk}/", {"capacity": 5})
    assert response.status_code == 200
    statuses = [entry_of(waiter, session).status for waiter in waiters]
    assert statuses == ["offered"] * 3 + ["waiting"] * 2
    assert sorted(offers_mailed()) == sorted(w.email for w in waiters[:3])
    assert booking_rules.seats_taken(session=session) == 5


def test_an_entry_that_does_not_fit_waits_and_a_smaller_later_one_is_served():
    session = full_session(capacity=3, price="0.00")
    big, small = UserFactory(), UserFactory()
    join(big, session, seats=2)
    join(small, session, seats=1)
    cancel_a_free_booking(session)
    assert entry_of(big, session).status == "waiting"
    assert entry_of(small, session).status == "booked"
    # The next freed seat is not enough for two either; two freed at once are.
    cancel_a_free_booking(session)
    assert entry_of(big, session).status == "waiting"
    assert booking_rules.seats_taken(session=session) == 2
    cancel_a_free_booking(session)
    assert entry_of(big, session).status == "booked"
    assert entry_of(big, session).booking.seats == 2


def test_leaving_with_an_open_offer_withdraws_it_and_passes_it_on():
    session = SessionFactory(capacity=1, price=Decimal("25.00"))
    holder = BookingFactory(session=session, status="confirmed", payment_status="not_required")
    first, second = UserFactory(), UserFactory()
    join(first, session)
    join(second, session)
    auth_client(holder.user).post(f"/api/bookings/{holder.pk}/cancel/")
    offer = entry_of(first, session).booking
    assert auth_client(first).delete(url(session)).status_code == 204
    offer.refresh_from_db()
    assert offer.status == "cancelled"
    assert entry_of(first, session).status == "left"
    assert entry_of(second, session).status == "offered"


def test_cancelling_the_offered_booking_declines_it():
    session = SessionFactory(capacity=1, price=Decimal("25.00"))
    holder = BookingFactory(session=session, status="confirmed", payment_status="not_required")
    first, second = UserFactory(), UserFactory()
    join(first, session)
    join(second, session)
    auth_client(holder.user).post(f"/api/bookings/{holder.pk}/cancel/")
    offer = entry_of(first, session).booking
    assert auth_client(first).post(f"/api/bookings/{offer.pk}/cancel/").status_code == 200
    assert entry_of(first, session).status == "left"
    assert entry_of(second, session).status == "offered"


def test_booking_normally_while_waiting_closes_the_entry():
    session = SessionFactory(capacity=3, price=Decimal("0.00"))
    BookingFactory(session=session, seats=2)
    user = UserFactory()
    join(user, session, seats=2)
    response = auth_client(user).post("/api/bookings/", {"session": session.pk, "seats": 1})
    assert response.status_code == 201
    assert entry_of(user, session).status == "booked"


def test_a_cancelled_session_closes_its_waitlist_and_tells_the_people_waiting(
    creator, django_capture_on_commit_callbacks
):
    session = SessionFactory(creator=creator, capacity=1, price=Decimal("0.00"))
    holder = BookingFactory(session=session, status="confirmed", payment_status="not_required")
    waiting = [UserFactory() for _ in range(2)]
    for user in waiting:
        join(user, session)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(creator).patch(
            f"/api/sessions/{session.pk}/", {"status": "cancelled"}
        )
    assert response.status_code == 200
    assert [entry_of(user, session).status for user in waiting] == ["expired", "expired"]
    # Nobody got the seat the cancellation freed; each person waiting is told once.
    assert offers_mailed() == []
    told = [m.to[0] for m in mail.outbox if "waitlist is closed" in m.body]
    assert sorted(told) == sorted(user.email for user in waiting)
    holder.refresh_from_db()
    assert holder.status == "cancelled"
    assert Booking.objects.filter(session=session).count() == 1


def test_seats_freed_is_a_no_op_without_people_waiting(django_assert_num_queries):
    session = SessionFactory(capacity=3)
    with transaction.atomic():
        locked = lock_session(session_id=session.pk)
        with django_assert_num_queries(1):
            assert services.waitlist_seats_freed(session=locked) == []


def test_a_refund_from_stripes_dashboard_frees_the_seat_for_the_waitlist(fake_stripe, user):
    session = SessionFactory(capacity=1, price=Decimal("20.00"))
    booking = book_service(user, session)
    intent_id = start_payment(user, booking)
    webhook = APIClient()
    succeeded = FakeStripe.signed_event("payment_intent.succeeded", fake_stripe.succeed(intent_id))
    deliver(webhook, *succeeded)
    waiter = UserFactory()
    assert join(waiter, session).status_code == 201
    refunded = FakeStripe.signed_event("charge.refunded", fake_stripe.charge_for(intent_id))
    assert deliver(webhook, *refunded).json()["outcome"] == "refunded"
    booking.refresh_from_db()
    assert booking.status == "cancelled"
    entry = entry_of(waiter, session)
    assert entry.status == "offered"
    assert booking_rules.seats_taken(session=session) == 1
