"""E-mail through the outbox and a real `celery -A core worker`, against real Redis.

The web side is a live gunicorn (scripts/live_server.py) publishing to Redis; the mail sink is
Django's file backend in a temporary folder, read by the test. PostgreSQL only (the web server,
the worker and the test share the database), and only with TEST_REDIS_URL (task_support.py).
"""

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from backend.tests.fake_stripe import FakeStripe
from backend.tests.task_support import (
    TEST_REDIS_URL,
    MailSink,
    flush_test_redis,
    paid_booking,
    private_redis,
    requires_redis,
    start_beat,
    start_worker,
    stripe_env,
    task_env,
    wait_for,
)
from scripts.live_server import ROOT, live_server
from scripts.load import create_load_data, request

# Real celery worker and beat processes against Redis. One xdist group with the other module
# that empties TEST_REDIS_URL (test_tasks_worker.py, test_tasks_refunds.py): `make test` runs
# the e2e tests on two workers, and a FLUSHDB must not hit the other's broker mid-test.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.e2e,
    requires_redis,
    pytest.mark.xdist_group("test_redis"),
]


@pytest.fixture
def mail():
    sink = MailSink()
    yield sink
    sink.cleanup()


def outbox_statuses(server) -> dict[str, int]:
    with psycopg.connect(server.database_url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM outbox_messages GROUP BY status")
        return dict(rows.fetchall())


def book(server, token: str, session_id: int):
    return request(
        server.url, "POST", "/api/bookings/", token=token, payload={"session": session_id}
    )


def test_the_booking_email_is_sent_by_the_worker_not_by_the_request(mail, tmp_path):
    flush_test_redis()
    env = task_env({}, broker_url=TEST_REDIS_URL, mail=mail)
    with live_server(suffix="mailworker", workers=1, extra_env=env) as server:
        data = create_load_data(server, tag="mw", sessions=1, capacity=5, users=1)

        response = book(server, data["tokens"][0], data["sessions"][0])

        assert response.status == 201
        # No worker runs yet: the request sent nothing, the message waits on the broker.
        assert mail.messages() == []
        assert outbox_statuses(server) == {"published": 1}
        health = request(server.url, "GET", "/api/health/")
        assert (health.status, health.body) == (
            200,
            {"status": "ok", "database": "ok", "queue": "ok"},
        )

        worker = start_worker(server.env, tmp_path)
        try:
            wait_for(lambda: mail.messages(), timeout=30, what="the booking e-mail")
            time.sleep(1)  # room for a duplicate to show up
        finally:
            worker.stop()
        (message,) = mail.messages()
        assert message["To"] == "load_mw_0@example.com"
        assert message["Subject"] == "[Sessions Marketplace] Booking confirmed: Load session mw 0"
        assert f"Booking: #{response.body['id']} (confirmed" in mail.text_of(message)
        assert outbox_statuses(server) == {"done": 1}


def test_redis_stopped_during_a_booking_load_loses_nothing_and_does_nothing_twice(mail, tmp_path):
    """Bookings and cancellations of paid bookings while Redis is down: every request is
    answered as usual, and once Redis is back each e-mail and each refund happens once."""
    users, paid_users = 30, 6
    fake = FakeStripe().start()
    try:
        with private_redis() as broker:
            env = {
                **task_env({}, broker_url=broker.url, mail=mail),
                **stripe_env(fake),
                # Messages the stopped Redis lost are published again after this long.
                "OUTBOX_REPUBLISH_AFTER_SECONDS": "5",
                "OUTBOX_SWEEP_SECONDS": "2",
            }
            with live_server(suffix="redisdown", workers=2, extra_env=env, seed=False) as server:
                data = create_load_data(server, tag="rd", sessions=3, capacity=10, users=users)
                paid = create_load_data(
                    server, tag="rdp", sessions=1, capacity=10, users=paid_users, price="25.00"
                )
                worker = start_worker(server.env, tmp_path)
                beat = None
                try:
                    paid_ids = [
                        paid_booking(server, fake, token, paid["sessions"][0])
                        for token in paid["tokens"]
                    ]
                    # Their "received" and "confirmed" e-mails, before the outage.
                    wait_for(
                        lambda: set(outbox_statuses(server)) == {"done"},
                        timeout=60,
                        what="the paid bookings' e-mails",
                    )
                    done_before = outbox_statuses(server)["done"]
                    answered: list = []

                    def one(index: int):
                        result = book(server, data["tokens"][index], data["sessions"][index % 3])
                        answered.append(result)
                        if len(answered) == users // 3:
                            broker.stop()  # mid-load, with requests in flight
                        return result

                    with ThreadPoolExecutor(max_workers=6) as pool:
                        results = list(pool.map(one, range(users)))
                    cancels = [
                        request(
                            server.url, "POST", f"/api/bookings/{booking_id}/cancel/", token=token
                        )
                        for booking_id, token in zip(paid_ids, paid["tokens"], strict=True)
                    ]

                    assert [r.status for r in results] == [201] * users
                    assert [r.status for r in cancels] == [200] * paid_users
                    stranded = outbox_statuses(server)
                    assert stranded.get("pending", 0) >= users // 2 + 2 * paid_users, stranded
                    asked = sum(stranded.values())
                    assert fake.refund_count == 0
                    health = request(server.url, "GET", "/api/health/")
                    assert (health.status, health.body["queue"]) == (200, "down")

                    broker.start()
                    if worker.popen.poll() is not None:
                        # kombu's Redis transport may exit the worker when the broker vanishes
                        # with a message unacknowledged; its supervisor (docker-compose's
                        # restart policy) starts it again, and so does this test.
                        worker = start_worker(server.env, tmp_path, name="worker-restarted")
                    beat = start_beat(server.env, tmp_path, name="beat")
                    # Booking e-mails (one per load booking), then per paid booking a
                    # cancellation e-mail and a refund, on top of what was done before.
                    assert asked - done_before == users + 2 * paid_users
                    try:
                        wait_for(
                            lambda: outbox_statuses(server) == {"done": asked},
                            timeout=120,
                            what="every outbox row done after Redis came back",
                        )
                    except AssertionError as timed_out:
                        raise AssertionError(
                            f"{timed_out}: {outbox_statuses(server)}\n"
                            f"--- worker log (end) ---\n{worker.log()[-6000:]}\n"
                            f"--- beat log (end) ---\n{beat.log()[-3000:]}"
                        ) from None
                    time.sleep(3)  # a sweep or two more: nothing may happen again
                finally:
                    if beat is not None:
                        beat.stop()
                    worker.stop()
                expected = {
                    (
                        f"load_rd_{i}@example.com",
                        f"[Sessions Marketplace] Booking confirmed: Load session rd {i % 3}",
                    )
                    for i in range(users)
                } | {
                    (
                        f"load_rdp_{i}@example.com",
                        f"[Sessions Marketplace] {what}: Load session rdp 0",
                    )
                    for i in range(paid_users)
                    for what in ("Booking received", "Booking confirmed", "Booking cancelled")
                }
                counts = mail.counts()
                assert set(counts) == expected
                assert set(counts.values()) == {1}, counts
                assert fake.refund_count == paid_users
                refunded = sorted(
                    int(r["metadata"]["booking_id"]) for r in fake.state.refunds.values()
                )
                assert refunded == sorted(paid_ids)
    finally:
        fake.stop()


STRANDED_CODE = """
import json, sys
from backend.models import OutboxMessage
count = int(sys.stdin.read())
OutboxMessage.objects.bulk_create([
    OutboxMessage(
        task="notifications.send_email",
        effect_key=f"email:booked:booking:{9000 + i}",
        kwargs={"kind": "booked", "booking_id": 9000 + i, "to": f"stranded{i}@example.com",
                "subject": f"Stranded {i}", "body": "Left behind by a crash."},
    )
    for i in range(count)
])
"""


def test_two_beats_by_mistake_still_send_each_email_once(mail, tmp_path):
    """Rows a crash left unpublished are swept by two beats at once: one e-mail each."""
    flush_test_redis()
    stranded = 20
    env = {**task_env({}, broker_url=TEST_REDIS_URL, mail=mail), "OUTBOX_SWEEP_SECONDS": "1"}
    with live_server(suffix="twobeats", workers=1, extra_env=env, seed=False) as server:
        subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [sys.executable, "manage.py", "shell", "-c", STRANDED_CODE],
            cwd=ROOT,
            env=server.env,
            input=str(stranded),
            text=True,
            capture_output=True,
            check=True,
        )
        worker = start_worker(server.env, tmp_path)
        beats = [start_beat(server.env, tmp_path, name=f"beat{n}") for n in (1, 2)]
        try:
            wait_for(
                lambda: outbox_statuses(server) == {"done": stranded},
                timeout=60,
                what="the stranded rows to be sent",
            )
            # Both beats keep sending the sweep: let a few periods pass.
            wait_for(
                lambda: worker.log().count("already ran in period") >= 3,
                timeout=30,
                what="the second beat's duplicate sweeps to be skipped",
            )
        finally:
            for beat in beats:
                beat.stop()
            worker.stop()
        for beat in beats:
            assert "Sending due task outbox.sweep" in beat.log()
        counts = mail.counts()
        assert counts == {(f"stranded{i}@example.com", f"Stranded {i}"): 1 for i in range(stranded)}
        with psycopg.connect(server.database_url) as conn:
            runs = conn.execute(
                "SELECT slot, count(*) FROM periodic_runs WHERE job = 'outbox.sweep' GROUP BY slot"
            ).fetchall()
        assert runs and {count for _, count in runs} == {1}
