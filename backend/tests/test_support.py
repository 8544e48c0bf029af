"""The test-support helpers do what the race and expiry tests rely on."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from backend.booking_rules import seats_taken
from backend.models import Booking, Payment, StoredFile
from backend.tests.factories import (
    BookingFactory,
    PaymentFactory,
    SessionFactory,
    StoredFileFactory,
)
from backend.tests.support import (
    backdate,
    expire_hold,
    in_background,
    run_concurrently,
    wait_after,
)

# --- run_concurrently ------------------------------------------------------------------------


def test_results_come_back_in_task_order_with_exceptions_as_values():
    def fail():
        raise ValueError("boom")

    results = run_concurrently([lambda: 1, fail, lambda: 3])

    assert results[0] == 1
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "boom"
    assert results[2] == 3


def test_raise_errors_raises_the_first_exception_after_every_task_ran():
    ran = []

    def fail():
        raise KeyError("first")

    def record():
        time.sleep(0.05)
        ran.append("slow task")

    with pytest.raises(KeyError, match="first"):
        run_concurrently([fail, record], raise_errors=True)
    assert ran == ["slow task"]


def test_tasks_start_together_behind_the_barrier():
    # Each task waits for all the others to have started: only concurrent starts get through.
    started = threading.Barrier(4)

    def meet():
        return started.wait(timeout=5) >= 0

    assert run_concurrently([meet] * 4, raise_errors=True) == [True] * 4


def test_max_workers_caps_the_threads_and_still_runs_every_task():
    threads_seen = set()
    lock = threading.Lock()

    def task(number):
        with lock:
            threads_seen.add(threading.get_ident())
        return number

    results = run_concurrently([lambda n=n: task(n) for n in range(10)], max_workers=3)

    assert results == list(range(10))
    assert len(threads_seen) <= 3


def test_a_hung_thread_fails_the_test():
    release = threading.Event()
    try:
        with pytest.raises(AssertionError, match="1 of 1 threads still running"):
            run_concurrently([lambda: release.wait(5)], join_timeout=0.1)
    finally:
        release.set()


def test_in_background_returns_the_result_or_raises():
    assert in_background(lambda: 42).result() == 42

    def fail():
        raise RuntimeError("background failure")

    with pytest.raises(RuntimeError, match="background failure"):
        in_background(fail).result()


def test_wait_after_lets_no_caller_past_the_point_until_all_got_there(monkeypatch):
    events = []
    lock = threading.Lock()

    class Service:
        @staticmethod
        def check(name):
            with lock:
                events.append(f"checked {name}")

    wait_after(monkeypatch, Service, "check", parties=3)

    def call(name):
        Service.check(name)
        with lock:
            events.append(f"past {name}")

    run_concurrently([lambda n=n: call(n) for n in "abc"], start_together=False, raise_errors=True)

    assert [event.split()[0] for event in events] == ["checked"] * 3 + ["past"] * 3


def backends_of_this_database() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_every_thread_has_its_own_connection_and_closes_it():
    before = backends_of_this_database()

    def backend_pid():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    pids = run_concurrently([backend_pid] * 4, raise_errors=True)

    assert len(set(pids)) == 4
    # A closed connection's backend exits shortly after; none may be left behind.
    deadline = time.monotonic() + 5
    while backends_of_this_database() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends_of_this_database() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_lock_timeout_is_set_on_each_thread_connection():
    def current_lock_timeout():
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            return cursor.fetchone()[0]

    assert run_concurrently([current_lock_timeout] * 2, lock_timeout="7s") == ["7s", "7s"]


# --- backdate / expire_hold ------------------------------------------------------------------


@pytest.mark.django_db
def test_backdate_writes_the_past_to_the_database_and_the_instance():
    booking = BookingFactory()
    moment = timezone.now() - timedelta(days=3)

    returned = backdate(booking, created_at=moment)

    assert returned is booking
    assert booking.created_at == moment
    assert Booking.objects.get(pk=booking.pk).created_at == moment


@pytest.mark.django_db
def test_backdate_with_a_timedelta_counts_back_from_now():
    session = SessionFactory()
    before = timezone.now()

    backdate(session, created_at=timedelta(hours=2), start_time=timedelta(minutes=5))

    session.refresh_from_db()
    assert before - timedelta(hours=2) <= session.created_at <= timezone.now() - timedelta(hours=2)
    assert session.start_time < timezone.now() - timedelta(minutes=4)


@pytest.mark.django_db
def test_expire_hold_makes_a_pending_booking_stop_holding_seats(settings):
    session = SessionFactory(capacity=5)
    booking = BookingFactory(session=session, seats=2, status="pending", payment_status="unpaid")
    assert seats_taken(session=session) == 2

    expire_hold(booking)

    assert seats_taken(session=session) == 0
    hold = timedelta(minutes=settings.BOOKING_HOLD_MINUTES)
    assert timezone.now() - booking.created_at > hold


# --- factories -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_payment_factory_makes_a_succeeded_charge_for_a_paid_booking():
    payment = PaymentFactory()

    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.kind, stored.status) == ("charge", "succeeded")
    assert stored.amount == stored.booking.amount
    assert stored.currency == stored.booking.currency.lower()
    assert stored.booking.payment_status == "paid"
    assert stored.stripe_id.startswith("pi_")
    assert PaymentFactory(kind=Payment.Kind.REFUND).stripe_id.startswith("re_")


@pytest.mark.django_db
def test_stored_file_factory_makes_unique_avatar_rows():
    first, second = StoredFileFactory(), StoredFileFactory()

    assert first.key != second.key
    assert StoredFile.objects.filter(purpose="avatar", content_type="image/webp").count() == 2
