"""The outbox, in process: one row per effect, committed with the change, retried with
backoff, run once however often it is delivered; periodic jobs and run_periodic_tasks.

Tasks run inline here (no broker, as in `make run`); test_tasks_worker.py runs them on a real
worker against Redis. The broker-down case points the Celery app at a closed loopback port.
"""

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from backend.models import Booking, OutboxMessage, PeriodicRun, StoredFile
from backend.services import outbox
from backend.services.outbox import outbox_enqueue, outbox_execute, outbox_sweep
from backend.tasks import scheduler
from backend.tasks.periodic import PERIODIC_JOBS, run_periodic_job
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client, backdate
from core.celery import app as celery_app
from scripts.live_server import free_port

pytestmark = pytest.mark.django_db

SEND = "notifications.send_email"


class DownEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise SMTPException("connection refused")


def email_kwargs(booking_id: int = 1, to: str = "pat@example.com") -> dict:
    return {
        "kind": "booked",
        "booking_id": booking_id,
        "to": to,
        "subject": "Hi",
        "body": "Body",
    }


def test_a_message_commits_with_the_change_and_runs_after_it(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        message = outbox_enqueue(task=SEND, kwargs=email_kwargs(), effect_key="email:t:1")
        assert mail.outbox == []  # nothing before the commit
    assert len(callbacks) == 1
    assert [m.to for m in mail.outbox] == [["pat@example.com"]]
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("done", 1)
    assert message.done_at is not None


def test_a_rolled_back_change_leaves_no_message(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ZeroDivisionError),
        transaction.atomic(),
    ):
        outbox_enqueue(task=SEND, kwargs=email_kwargs(), effect_key="email:t:1")
        1 / 0  # noqa: B018
    assert callbacks == []
    assert OutboxMessage.objects.count() == 0
    assert mail.outbox == []


def test_one_row_and_one_email_per_effect_key(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        first = outbox_enqueue(task=SEND, kwargs=email_kwargs(), effect_key="email:t:1")
        again = outbox_enqueue(task=SEND, kwargs=email_kwargs(), effect_key="email:t:1")
    assert first is not None and again is None
    assert OutboxMessage.objects.count() == 1
    assert len(mail.outbox) == 1
    # Delivered again (a broker redelivery, a second sweep): nothing is sent twice.
    assert outbox_execute(message_id=first.pk) == "skipped"
    assert len(mail.outbox) == 1


def test_a_failure_is_retried_with_backoff_then_succeeds(
    settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.DownEmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        message = outbox_enqueue(task=SEND, kwargs=email_kwargs(), effect_key="email:t:1")
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("pending", 1)
    assert "SMTPException: connection refused" in message.last_error
    wait = message.available_at - timezone.now()
    assert timedelta(seconds=8) < wait <= timedelta(seconds=10)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert outbox_sweep() == 0  # not due yet
    assert mail.outbox == []
    assert outbox_sweep(now=timezone.now() + timedelta(seconds=11)) == 0  # the claim says "not yet"

    OutboxMessage.objects.filter(pk=message.pk).update(available_at=timezone.now())
    assert outbox_sweep() == 1
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("done", 2)


def test_backoff_doubles_up_to_the_cap(settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 10
    settings.OUTBOX_RETRY_MAX_SECONDS = 600
    delays = [outbox.retry_delay(n).total_seconds() for n in (1, 2, 3, 6, 7, 20)]
    assert delays == [10, 20, 40, 320, 600, 600]


def test_out_of_attempts_is_failed_and_stays_failed(settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = f"{__name__}.DownEmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        message = outbox_enqueue(
            task=SEND, kwargs=email_kwargs(), effect_key="email:t:1", max_attempts=2
        )
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=timezone.now())
    assert outbox_execute(message_id=message.pk) == "failed"
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 2)
    assert outbox_sweep(now=timezone.now() + timedelta(days=1)) == 0


def test_a_running_message_is_taken_over_only_when_its_lease_ran_out():
    message = OutboxMessage.objects.create(
        task=SEND,
        kwargs=email_kwargs(),
        effect_key="email:t:1",
        status="running",
        attempts=1,
        claimed_until=timezone.now() + timedelta(minutes=5),
    )
    assert outbox_execute(message_id=message.pk) == "skipped"  # its worker is still on it
    assert mail.outbox == []
    OutboxMessage.objects.filter(pk=message.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )  # that worker died
    assert outbox_sweep() == 1
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("done", 2)


def test_an_unknown_task_fails_for_good():
    message = OutboxMessage.objects.create(task="nobody.home", kwargs={}, effect_key="x:1")
    assert outbox_execute(message_id=message.pk) == "failed"
    message.refresh_from_db()
    assert message.status == "failed"
    assert "no handler" in message.last_error


# --- with a broker that is down ----------------------------------------------------------------


@pytest.fixture
def broker_down(settings):
    """Broker mode, publishing to a loopback port nobody listens on."""
    settings.TASKS_INLINE = False
    # Celery 5.6 fills broker_read_url/broker_write_url from broker_url when it is configured,
    # and publishing reads the write URL: all three change, and are put back.
    names = ("broker_url", "broker_read_url", "broker_write_url")
    saved = {name: celery_app.conf[name] for name in names}
    celery_app.conf.update(dict.fromkeys(names, f"redis://127.0.0.1:{free_port()}/0"))
    celery_app.pool.force_close_all()
    celery_app._pool = None
    yield
    outbox._broker_down_until = 0.0
    celery_app.conf.update(saved)
    celery_app.pool.force_close_all()
    celery_app._pool = None


def test_booking_with_the_broker_down_is_201_and_its_emails_wait(
    broker_down, api_client, django_capture_on_commit_callbacks
):
    creator = CreatorFactory(email="host@example.com")
    user = UserFactory(email="pat@example.com")
    session = SessionFactory(creator=creator, price=Decimal("0"))
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(user).post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 201
    assert Booking.objects.get().pk == response.json()["id"]
    rows = OutboxMessage.objects.order_by("id")
    assert [(m.effect_key, m.status) for m in rows] == [
        (f"email:booked:booking:{response.json()['id']}", "pending"),
        (f"email:creator_new_booking:booking:{response.json()['id']}", "pending"),
    ]
    assert mail.outbox == []

    health = api_client.get("/api/health/")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "queue": "down"}

    assert outbox_sweep() == 0  # still down: nothing published, nothing lost
    outbox._broker_down_until = 0.0  # past the backoff: it tries the broker again
    assert outbox_sweep() == 0
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"pending"}


# --- periodic jobs ---------------------------------------------------------------------------


def test_the_registry_has_the_jobs_and_beat_schedules_each(settings):
    assert {name: job.every_seconds for name, job in PERIODIC_JOBS.items()} == {
        "bookings.expire": 60,
        "outbox.sweep": settings.OUTBOX_SWEEP_SECONDS,
        "files.delete_orphans": 3600,
        "webhooks.prune_log": 3600,
        "idempotency.prune_keys": 3600,
        "payouts.schedule": settings.PAYOUT_JOB_SECONDS,  # issue 16
        "reminders.send": 60,
        "sessions.decide_minimum": 60,  # issue 25
    }
    celery_app.finalize()
    schedule = celery_app.conf.beat_schedule
    for name, job in PERIODIC_JOBS.items():
        assert schedule[name]["task"] == f"periodic.{name}"
        assert schedule[name]["schedule"] == job.every_seconds
        assert f"periodic.{name}" in celery_app.tasks


def stale_booking() -> Booking:
    booking = BookingFactory.create(status="pending", payment_status="unpaid")
    return backdate(booking, created_at=timedelta(hours=1), hold_expires_at=timedelta(minutes=45))


def test_a_periodic_job_runs_once_per_period_whoever_sends_it():
    first = stale_booking()
    assert run_periodic_job("bookings.expire", at=6000.0) == "ran: 1"
    second = stale_booking()
    # A second beat sends the same job in the same minute: it does not run again.
    assert run_periodic_job("bookings.expire", at=6059.0) == "skipped"
    second.refresh_from_db()
    assert second.status == "pending"
    assert run_periodic_job("bookings.expire", at=6060.0) == "ran: 1"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("expired", "expired")
    assert list(PeriodicRun.objects.values_list("job", "slot", "result").order_by("slot")) == [
        ("bookings.expire", 100, "1"),
        ("bookings.expire", 101, "1"),
    ]


def test_run_periodic_tasks_runs_every_job_once_now(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    booking = stale_booking()
    waiting = OutboxMessage.objects.create(task=SEND, kwargs=email_kwargs(), effect_key="e:1")
    owner = UserFactory()
    (tmp_path / "orphan.webp").write_bytes(b"x")
    (tmp_path / "kept.webp").write_bytes(b"x")
    (tmp_path / "young.webp").write_bytes(b"x")
    orphan = StoredFile.objects.create(
        owner=owner, key="orphan.webp", purpose="avatar", size=1, content_type="image/webp"
    )
    kept = StoredFile.objects.create(
        owner=owner, key="kept.webp", purpose="avatar", size=1, content_type="image/webp"
    )
    young = StoredFile.objects.create(
        owner=owner, key="young.webp", purpose="avatar", size=1, content_type="image/webp"
    )
    owner.avatar = "kept.webp"
    owner.save()
    StoredFile.objects.filter(pk__in=[orphan.pk, kept.pk]).update(
        created_at=timezone.now() - timedelta(hours=2)
    )

    out = StringIO()
    call_command("run_periodic_tasks", stdout=out)

    assert out.getvalue().splitlines() == [
        "bookings.expire: 1",
        "sessions.decide_minimum: 0",  # issue 25, registered with bookings.expire
        "outbox.sweep: 1",
        "files.delete_orphans: 1",
        # Then the later features' jobs, in the order backend/tasks/__init__.py imports them.
        "payouts.schedule: 0",  # nothing due here (test_payouts_transfers.py)
        "reminders.send: 0",
        "webhooks.prune_log: 0",
        "idempotency.prune_keys: 0",
    ]
    booking.refresh_from_db()
    assert booking.status == "expired"
    waiting.refresh_from_db()
    assert waiting.status == "done"
    assert len(mail.outbox) == 1
    assert set(StoredFile.objects.values_list("key", flat=True)) == {"kept.webp", "young.webp"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.webp", "young.webp"]
    assert young.pk  # kept: inside the grace period


def test_the_expire_bookings_command_still_works():
    booking = stale_booking()
    out = StringIO()
    call_command("expire_bookings", stdout=out)
    assert out.getvalue().strip() == "Expired 1 booking(s)."
    booking.refresh_from_db()
    assert booking.status == "expired"


@pytest.mark.parametrize(
    ("argv", "environ", "inline", "expected"),
    [
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, True, True),
        (["manage.py", "runserver", "--noreload"], {}, True, True),
        (["manage.py", "runserver"], {}, True, False),  # the autoreloader's parent
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, False, False),  # a broker: beat's job
        (
            ["manage.py", "runserver"],
            {"RUN_MAIN": "true", "INLINE_SCHEDULER": "false"},
            True,
            False,
        ),
        (["manage.py", "migrate"], {"RUN_MAIN": "true"}, True, False),
        (["gunicorn", "core.wsgi"], {}, True, False),
    ],
)
def test_the_inline_scheduler_starts_only_in_the_dev_server(
    settings, argv, environ, inline, expected
):
    settings.TASKS_INLINE = inline
    assert scheduler.should_start(argv, environ) is expected
