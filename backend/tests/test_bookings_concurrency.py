"""Capacity under concurrent requests, on PostgreSQL (SQLite serialises writers anyway).

Real threads start together behind a barrier, each with its own database connection, which
it closes at the end. Without the session row lock in `lock_session` the first test oversells
(see the bookings section of the README for the recorded failure).
"""

from collections import Counter
from decimal import Decimal

import pytest
from django.db import transaction

from backend import booking_rules as rules
from backend.exceptions import BookingError
from backend.models import Booking, Session
from backend.services import bookings as services
from backend.services.locking import lock_session
from backend.tests.factories import SessionFactory, UserFactory
from backend.tests.support import auth_client, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def run_together(tasks):
    """Every task on its own thread, all released at once; exceptions come back as results.

    The machine running the suite is shared and small: a long queue on one row lock must not
    turn into a lock-timeout 503. Correctness is what is measured.
    """
    return run_concurrently(tasks, lock_timeout="30s")


def post_booking(client, session_id, seats=1):
    def task():
        response = client.post("/api/bookings/", {"session": session_id, "seats": seats})
        return response.status_code, response.json().get("code")

    return task


def test_forty_users_race_for_five_seats_ten_times(settings):
    # The same 40 users hold unpaid bookings from every paid round: the hold limit is not what
    # this test is about (test_holds.py is).
    settings.MAX_UNPAID_BOOKINGS = 10
    users = [UserFactory() for _ in range(40)]
    clients = [auth_client(user) for user in users]
    for round_number in range(10):
        # Alternate free (confirmed at once) and paid (pending, held) bookings.
        price = Decimal("0.00") if round_number % 2 == 0 else Decimal("15.00")
        session = SessionFactory(capacity=5, price=price)
        results = run_together([post_booking(client, session.pk) for client in clients])

        statuses = Counter(status for status, _ in results)
        assert statuses == {201: 5, 409: 35}, f"round {round_number}: {statuses}"
        assert {code for status, code in results if status == 409} == {"sold_out"}
        assert Booking.objects.filter(session=session).count() == 5
        assert rules.seats_taken(session=session) == 5


def test_the_same_user_posting_the_same_booking_ten_times_gets_one():
    user = UserFactory()
    clients = [auth_client(user) for _ in range(10)]
    for _ in range(3):
        session = SessionFactory(capacity=50)
        results = run_together([post_booking(client, session.pk) for client in clients])
        assert Counter(results) == {(201, None): 1, (409, "already_booked"): 9}
        assert Booking.objects.filter(session=session, user=user).count() == 1


def test_capacity_reduction_racing_with_bookings_never_oversells():
    users = [UserFactory() for _ in range(12)]
    clients = [auth_client(user) for user in users]
    for _ in range(5):
        session = SessionFactory(capacity=10)

        def reduce_capacity(session_id=session.pk):
            # What a capacity change must do: lock, compare with the seats taken, save.
            with transaction.atomic():
                locked = lock_session(session_id=session_id)
                try:
                    rules.check_capacity_covers_bookings(session=locked, capacity=4)
                except BookingError:
                    return "refused"
                locked.capacity = 4
                locked.save(update_fields=["capacity", "updated_at"])
                return "reduced"

        tasks = [post_booking(client, session.pk) for client in clients]
        tasks.insert(6, reduce_capacity)
        results = run_together(tasks)

        outcome = results.pop(6)
        assert outcome in ("reduced", "refused"), outcome
        assert {status for status, _ in results} <= {201, 409}
        session.refresh_from_db()
        taken = rules.seats_taken(session=session)
        assert taken <= session.capacity
        assert taken == sum(1 for status, _ in results if status == 201)
        assert session.capacity == (4 if outcome == "reduced" else 10)


def test_seat_changes_racing_with_new_bookings_never_oversell():
    """booking_update re-checks the capacity under the same lock as booking_create."""
    session = SessionFactory(capacity=6, price=Decimal("10.00"))
    owners = [UserFactory() for _ in range(3)]
    held = [services.booking_create(user=owner, session_id=session.pk, seats=1) for owner in owners]

    def grow(booking, owner):
        def task():
            try:
                services.booking_update(booking_id=booking.pk, actor=owner, seats=3)
            except BookingError as error:
                return error.code
            return "grown"

        return task

    newcomers = [auth_client(UserFactory()) for _ in range(4)]
    tasks = [grow(booking, owner) for booking, owner in zip(held, owners, strict=True)]
    tasks += [post_booking(client, session.pk) for client in newcomers]
    results = run_together(tasks)
    assert set(results[:3]) <= {"grown", "not_enough_seats", "sold_out"}
    assert {status for status, _ in results[3:]} <= {201, 409}
    assert rules.seats_taken(session=Session.objects.get(pk=session.pk)) <= 6
