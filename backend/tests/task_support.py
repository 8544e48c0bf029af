"""Real Redis and real Celery processes for the background-work proofs (test_tasks_*.py).

TEST_REDIS_URL names the Redis database the suite may use (CI: .ci/run exports one of its own;
locally e.g. redis://127.0.0.1:6379/5). Unset or unreachable: those tests skip, with the reason.
Each test empties only that database (FLUSHDB), never the server. A test that stops Redis runs
its own redis-server on a free loopback port (`private_redis`).
"""

import contextlib
import email
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from backend.tests.fake_stripe import API_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, FakeStripe
from scripts.live_server import ROOT, free_port
from scripts.load import request

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()


def _redis_reason() -> str | None:
    if not TEST_REDIS_URL:
        return "needs Redis: set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/5)"
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        return f"needs Redis at TEST_REDIS_URL: {error}"
    return None


REDIS_REASON = _redis_reason()
requires_redis = pytest.mark.skipif(REDIS_REASON is not None, reason=REDIS_REASON or "")


def flush_test_redis(url: str = TEST_REDIS_URL) -> None:
    redis.Redis.from_url(url).flushdb()


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- the mail sink: EMAIL_URL=file:///dir, read here, never by the request -------------------


class MailSink:
    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="sm-mail-"))

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def messages(self) -> list[email.message.Message]:
        found = []
        for file in sorted(self.path.glob("*.log")):
            # Django's file backend writes each message followed by a line of 79 dashes.
            for chunk in file.read_text().split("-" * 79):
                if chunk.strip():
                    found.append(email.message_from_string(chunk.strip()))
        return found

    @staticmethod
    def text_of(message: email.message.Message) -> str:
        """The plain-text body (e-mails are multipart: text and HTML)."""
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    return payload.decode(part.get_content_charset() or "utf-8")
        raise AssertionError(f"no text/plain part in {message['Subject']!r}")

    def counts(self) -> Counter:
        return Counter((m["To"], m["Subject"]) for m in self.messages())

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# --- processes -------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, no goodbye: the whole process group (a prefork pool's children too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def start_process(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Process:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("w")
    popen = subprocess.Popen(  # noqa: S603 - our own commands
        args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    return Process(name=name, popen=popen, log_path=log_path)


def start_worker(
    env: dict[str, str], log_dir: Path, *, name: str = "worker", wait: bool = True
) -> Process:
    process = start_process(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "core",
            "worker",
            "-Q",
            "mail,payments,default",
            # prefork, as in production (the thread pool's acks crash the worker when Redis
            # goes away: kombu's redis transport is not thread-safe there).
            "--pool=prefork",
            "--concurrency=2",
            "-n",
            f"{name}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        env,
        log_dir,
    )
    if wait:
        wait_for(
            lambda: " ready." in process.log() or process.popen.poll() is not None,
            timeout=60,
            what=f"celery {name} to be ready",
        )
        assert process.popen.poll() is None, process.log()
    return process


def start_beat(env: dict[str, str], log_dir: Path, *, name: str) -> Process:
    return start_process(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "core",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(log_dir / f"{name}-schedule"),
            "--pidfile=",
        ],
        env,
        log_dir,
    )


def task_env(base: dict[str, str], *, broker_url: str, mail: MailSink) -> dict[str, str]:
    """The environment of a web server, worker or beat that uses the broker."""
    return {
        **base,
        "CELERY_BROKER_URL": broker_url,
        "TASKS_INLINE": "false",
        "EMAIL_URL": mail.url,
        "LOG_FORMAT": "plain",
        "LOG_LEVEL": "INFO",
    }


# --- a Redis of our own, to stop and start ---------------------------------------------------


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sm-redis-"))
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.popen = subprocess.Popen(  # noqa: S603 - our own command
            [
                shutil.which("redis-server") or "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
            except redis.RedisError:
                return False

        wait_for(answers, timeout=10, what="the private redis-server")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(timeout=10)
        self.popen = None


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (apt-get install redis-server)")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


# --- Stripe: the stand-in (fake_stripe.py), reached by web and worker processes ---------------


def stripe_env(fake: FakeStripe) -> dict[str, str]:
    return {
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake.base_url,
        "STRIPE_TIMEOUT_SECONDS": "1",
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        # Retries and sweeps at test speed.
        "OUTBOX_SWEEP_SECONDS": "1",
        "OUTBOX_RETRY_BASE_SECONDS": "1",
        "OUTBOX_RETRY_MAX_SECONDS": "2",
        "OUTBOX_LEASE_SECONDS": "4",
    }


def paid_booking(server, fake: FakeStripe, token: str, session_id: int) -> int:
    booked = request(
        server.url, "POST", "/api/bookings/", token=token, payload={"session": session_id}
    )
    assert booked.status == 201, booked
    booking_id = booked.body["id"]
    intent = request(
        server.url,
        "POST",
        "/api/payment/create-intent/",
        token=token,
        payload={"booking_id": booking_id},
    )
    assert intent.status == 200, intent
    fake.succeed(intent.body["payment_intent_id"])
    confirmed = request(
        server.url,
        "POST",
        "/api/payment/confirm/",
        token=token,
        payload={"payment_intent_id": intent.body["payment_intent_id"]},
    )
    assert (confirmed.status, confirmed.body["payment_status"]) == (200, "paid"), confirmed
    return booking_id
