"""Refunds as tasks, against real Redis, a real `celery -A core worker` and the Stripe stand-in
(fake_stripe.py, which counts what reaches "Stripe"). PostgreSQL and TEST_REDIS_URL only.

The web side is a live gunicorn; paid bookings are made through the API as a client would
(book, create the intent, the customer pays at the stand-in, confirm).
"""

import json
import subprocess
import sys
import time

import psycopg
import pytest

from backend.tests.fake_stripe import FakeStripe
from backend.tests.task_support import (
    TEST_REDIS_URL,
    MailSink,
    flush_test_redis,
    paid_booking,
    requires_redis,
    start_beat,
    start_worker,
    stripe_env,
    task_env,
    wait_for,
)
from scripts.live_server import ROOT, live_server
from scripts.load import request

# Real celery worker and beat processes against Redis. One xdist group with the other module
# that empties TEST_REDIS_URL (test_tasks_worker.py, test_tasks_refunds.py): `make test` runs
# the e2e tests on two workers, and a FLUSHDB must not hit the other's broker mid-test.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.e2e,
    requires_redis,
    pytest.mark.xdist_group("test_redis"),
]

SETUP_CODE = """
import json, sys
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken
from backend.models import Session, User

spec = json.loads(sys.stdin.read())
creator = User.objects.create(username="refund_creator", role="creator")
def new_session(title):
    return Session.objects.create(
        creator=creator, title=title, price=Decimal("25.00"), currency="USD",
        duration_minutes=60, capacity=spec["users"] + 5, is_online=True,
        meeting_url="https://meet.example.com/r", status="published",
        start_time=timezone.now() + timedelta(days=5))
paid, other = new_session("Paid"), new_session("Other")
users = [User.objects.create(username=f"refund_{i}", email=f"refund_{i}@example.com")
         for i in range(spec["users"])]
token = lambda u: str(RefreshToken.for_user(u).access_token)
print(json.dumps({"paid": paid.pk, "other": other.pk, "creator": token(creator),
                  "users": [token(u) for u in users]}))
"""


@pytest.fixture
def fake():
    server = FakeStripe().start()
    yield server
    server.clear_outages()
    server.stop()


@pytest.fixture
def mail():
    sink = MailSink()
    yield sink
    sink.cleanup()


def setup_data(server, users: int) -> dict:
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [sys.executable, "manage.py", "shell", "-c", SETUP_CODE],
        cwd=ROOT,
        env=server.env,
        input=json.dumps({"users": users}),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def query(server, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(server.database_url) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_worker_killed_mid_refund_runs_it_again_and_stripe_refunds_once(fake, mail, tmp_path):
    flush_test_redis()
    env = {**task_env({}, broker_url=TEST_REDIS_URL, mail=mail), **stripe_env(fake)}
    with live_server(suffix="refundkill", workers=1, extra_env=env, seed=False) as server:
        data = setup_data(server, users=1)
        booking_id = paid_booking(server, fake, data["users"][0], data["paid"])
        # Stripe makes the refund, then the answer never comes in time: the worker is inside
        # the Stripe call when it is killed.
        fake.delay_next("/v1/refunds", 20.0, after_processing=True)
        first = start_worker(server.env, tmp_path, name="worker1")
        beat = None
        second = None
        try:
            cancelled = request(
                server.url, "POST", f"/api/bookings/{booking_id}/cancel/", token=data["users"][0]
            )
            assert (cancelled.status, cancelled.body["status"]) == (200, "cancelled")
            wait_for(
                lambda: fake.requests_to("POST", "/v1/refunds"), timeout=30, what="the refund call"
            )
            first.kill()
            assert fake.refund_count == 1  # Stripe did it; we never heard back
            ((status, attempts),) = query(
                server, "SELECT status, attempts FROM outbox_messages WHERE task = %s",
                ("payments.refund_charge",),
            )  # fmt: skip
            assert (status, attempts) == ("running", 1)

            second = start_worker(server.env, tmp_path, name="worker2")
            beat = start_beat(server.env, tmp_path, name="beat")
            wait_for(
                lambda: (
                    query(
                        server, "SELECT payment_status FROM bookings WHERE id = %s", (booking_id,)
                    )
                    == [("refunded",)]
                ),
                timeout=60,
                what="the refund to be recorded by the second worker",
            )
        finally:
            for process in (beat, second):
                if process is not None:
                    process.stop()
        refund_calls = fake.requests_to("POST", "/v1/refunds")
        assert len(refund_calls) == 2  # the task ran again ...
        assert {call.idempotency_key for call in refund_calls} == {refund_calls[0].idempotency_key}
        assert fake.refund_count == 1  # ... and Stripe refunded once
        assert query(
            server, "SELECT count(*) FROM payments WHERE booking_id = %s AND kind = 'refund'",
            (booking_id,),
        ) == [(1,)]  # fmt: skip
        assert query(
            server, "SELECT status, attempts FROM outbox_messages WHERE task = %s",
            ("payments.refund_charge",),
        ) == [("done", 2)]  # fmt: skip


def test_cancelling_a_40_booking_session_while_stripe_is_down(fake, mail, tmp_path):
    flush_test_redis()
    paid_count = 40
    env = {**task_env({}, broker_url=TEST_REDIS_URL, mail=mail), **stripe_env(fake)}
    with live_server(suffix="refund40", workers=2, extra_env=env, seed=False) as server:
        data = setup_data(server, users=paid_count + 1)
        booking_ids = [
            paid_booking(server, fake, token, data["paid"]) for token in data["users"][:paid_count]
        ]
        worker = start_worker(server.env, tmp_path)
        beat = start_beat(server.env, tmp_path, name="beat")
        try:
            # Stripe stalls: every refund call hangs past the client's timeout, no answer.
            fake.fail_until_cleared("/v1/refunds", status=0, delay=3.0)

            deleted = request(
                server.url, "DELETE", f"/api/sessions/{data['paid']}/", token=data["creator"]
            )

            # The answer is there while Stripe has refunded nothing: it did not wait for Stripe.
            assert deleted.status == 200, deleted
            assert fake.refund_count == 0
            states = query(
                server,
                "SELECT status, payment_status, count(*) FROM bookings WHERE session_id = %s "
                "GROUP BY status, payment_status",
                (data["paid"],),
            )
            assert states == [("cancelled", "paid", paid_count)]
            # Other sessions book as usual meanwhile.
            other = request(
                server.url, "POST", "/api/bookings/", token=data["users"][-1],
                payload={"session": data["other"]},
            )  # fmt: skip
            assert other.status == 201, other
            wait_for(
                lambda: query(
                    server, "SELECT count(*) FROM outbox_messages WHERE task = %s AND attempts > 0",
                    ("payments.refund_charge",),
                )[0][0] >= 4,
                timeout=60,
                what="refund attempts failing against the stalled Stripe",
            )  # fmt: skip
            assert fake.refund_count == 0

            fake.clear_outages()  # Stripe recovers
            wait_for(
                lambda: query(
                    server,
                    "SELECT count(*) FROM bookings WHERE session_id = %s "
                    "AND payment_status = 'refunded'",
                    (data["paid"],),
                )[0][0] == paid_count,
                timeout=180,
                what="all 40 refunds",
            )  # fmt: skip
            time.sleep(2)  # a few more sweeps: nothing may be refunded twice
        finally:
            beat.stop()
            worker.stop()
        assert fake.refund_count == paid_count
        refunded_bookings = [int(r["metadata"]["booking_id"]) for r in fake.state.refunds.values()]
        assert sorted(refunded_bookings) == sorted(booking_ids)
        assert query(
            server,
            "SELECT count(*), count(DISTINCT booking_id) FROM payments WHERE kind = 'refund'",
        ) == [(paid_count, paid_count)]
