"""`make run`'s mode, for real: `manage.py runserver` on SQLite with no broker runs every task
inline after its commit and the periodic jobs in its scheduler thread (no Redis anywhere)."""

import json
import os
import subprocess
import sys

import pytest

from backend.tests.task_support import MailSink, start_process, wait_for
from scripts.live_server import ROOT, free_port
from scripts.load import request

SETUP_CODE = """
import json
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken
from backend.models import Booking, OutboxMessage, Session, User

creator = User.objects.create(username="dev_creator", role="creator", email="host@example.com")
user = User.objects.create(username="dev_user", email="dev@example.com")
session = Session.objects.create(
    creator=creator, title="Dev", price=Decimal("0"), currency="USD", duration_minutes=60,
    capacity=5, is_online=True, meeting_url="https://meet.example.com/d", status="published",
    start_time=timezone.now() + timedelta(days=2))
paid = Session.objects.create(
    creator=creator, title="Paid", price=Decimal("9"), currency="USD", duration_minutes=60,
    capacity=5, is_online=True, meeting_url="https://meet.example.com/p", status="published",
    start_time=timezone.now() + timedelta(days=2))
stale = Booking.objects.create(session=paid, user=creator, seats=1, amount=Decimal("9"),
                               currency="USD", status="pending", payment_status="unpaid")
Booking.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=1),
                                           hold_expires_at=timezone.now())
# Left pending (as after a crash between commit and relay): the scheduler's sweep sends it.
OutboxMessage.objects.create(
    task="notifications.send_email", effect_key="email:test:stranded",
    kwargs={"kind": "test", "booking_id": stale.pk, "to": "stranded@example.com",
            "subject": "Stranded", "body": "Swept."})
print(json.dumps({"session": session.pk, "stale": stale.pk,
                  "token": str(RefreshToken.for_user(user).access_token)}))
"""


@pytest.fixture
def mail():
    sink = MailSink()
    yield sink
    sink.cleanup()


@pytest.mark.e2e
def test_runserver_without_a_broker_runs_tasks_and_periodic_jobs(mail, tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "TASKS_INLINE"}
    }
    env.update(
        DJANGO_DEBUG="true",
        SQLITE_PATH=str(tmp_path / "dev.sqlite3"),
        EMAIL_URL=mail.url,
        LOG_FORMAT="plain",
    )

    def manage(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            **kwargs,
        )

    manage("migrate", "--noinput")
    data = json.loads(manage("shell", "-c", SETUP_CODE).stdout.strip().splitlines()[-1])
    port = free_port()
    server = start_process(
        "runserver",
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env,
        tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_for(
            lambda: (r := request(url, "GET", "/api/health/", timeout=2)).status == 200 and r,
            timeout=60,
            what="the dev server",
        )
        assert health.body == {"status": "ok", "database": "ok", "queue": "inline"}

        booked = request(
            url, "POST", "/api/bookings/", token=data["token"], payload={"session": data["session"]}
        )
        assert booked.status == 201, booked
        # Inline: sent right after the commit, by the server itself (no worker exists).
        assert ("dev@example.com", "[Sessions Marketplace] Booking confirmed: Dev") in mail.counts()

        # The scheduler thread: the outbox sweep sends the stranded message, expiry runs.
        wait_for(
            lambda: ("stranded@example.com", "Stranded") in mail.counts(),
            timeout=30,
            what="the scheduler's outbox sweep",
        )
        check = "from backend.models import Booking; print(Booking.objects.get(pk={}).status)"
        wait_for(
            lambda: (
                manage("shell", "-c", check.format(data["stale"])).stdout.split()[-1] == "expired"
            ),
            timeout=30,
            what="the scheduler's expiry",
        )
    finally:
        server.stop()
    assert "inline scheduler started" in server.log()
    assert set(mail.counts().values()) == {1}
