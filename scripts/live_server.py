"""A real server on loopback for fuzzing, fault and load scripts.

`live_server()` prepares a fresh database (PostgreSQL when DATABASE_URL is set: a sibling
database named `<name>_<suffix>`; otherwise a temporary SQLite file), migrates it, loads the demo
data and starts gunicorn with production settings (DEBUG off) on a free port of 127.0.0.1.
"""

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import psycopg

if TYPE_CHECKING:
    from backend.tests.fake_stripe import FakeStripe

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "demo-" + secrets.token_urlsafe(12)


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    database_url: str | None
    process: subprocess.Popen
    workers: int
    log_path: Path
    extra: dict = field(default_factory=dict)

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/postgres"))


def recreate_postgres_database(database_url: str, name: str) -> str:
    with psycopg.connect(admin_url(database_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))


def drop_postgres_database(database_url: str, name: str) -> None:
    with psycopg.connect(admin_url(database_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/api/health/", timeout=2) as response,  # noqa: S310
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("server did not become healthy in time")


@contextlib.contextmanager
def live_server(
    *,
    suffix: str = "live",
    workers: int = 2,
    threads: int = 1,
    extra_env: dict[str, str] | None = None,
    seed: bool = True,
    database_url: str | None = None,
) -> Iterator[LiveServer]:
    """`database_url`: the PostgreSQL server to use instead of DATABASE_URL's."""
    workdir = Path(tempfile.mkdtemp(prefix=f"sm-{suffix}-"))
    base_url = database_url or os.environ.get("DATABASE_URL", "").strip()
    db_name = None
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "THROTTLE_ANON_RATE": "1000000/minute",
        "THROTTLE_USER_RATE": "1000000/minute",
        "THROTTLE_AUTH_RATE": "1000000/minute",
        "SEED_DEMO_PASSWORD": DEMO_PASSWORD,
        "EMAIL_URL": "locmem://",
        "MEDIA_ROOT": str(workdir / "media"),
        "LOG_LEVEL": os.environ.get("LIVE_LOG_LEVEL", "WARNING"),
        **(extra_env or {}),
    }
    if base_url:
        db_name = f"{urlsplit(base_url).path.lstrip('/')}_{suffix}"
        env["DATABASE_URL"] = recreate_postgres_database(base_url, db_name)
    else:
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(workdir / "db.sqlite3")

    def manage(*args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
        )

    manage("migrate", "--noinput")
    if seed:
        manage("seed_demo")

    port = free_port()
    log_path = workdir / "gunicorn.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "core.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    server = LiveServer(
        url=url,
        env=env,
        database_url=env.get("DATABASE_URL"),
        process=process,
        workers=workers,
        log_path=log_path,
    )
    try:
        wait_until_healthy(url, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if db_name:
            drop_postgres_database(base_url, db_name)
        shutil.rmtree(workdir, ignore_errors=True)


def obtain_token(url: str, username: str, password: str = DEMO_PASSWORD) -> str:
    import json

    request = urllib.request.Request(  # noqa: S310
        f"{url}/api/auth/token/",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())["access"]


def printed_demo_password(seed_output: str) -> str:
    """The password seed_demo prints for every demo account (`Demo password ...: <it>`)."""
    line = next(x for x in seed_output.splitlines() if x.startswith("Demo password"))
    return line.rsplit(" ", 1)[1]


@contextlib.contextmanager
def seeded_server_with_fake_stripe(**kwargs) -> Iterator[tuple[LiveServer, str, "FakeStripe"]]:
    """What `make run` gives: payments on the Stripe stand-in (signed webhooks to the server),
    demo data seeded through it, and the password seed_demo printed (none is chosen).
    Yields (server, password, stand-in)."""
    from backend.tests.fake_stripe import API_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, FakeStripe

    stripe = FakeStripe().start()
    extra_env = {
        **kwargs.pop("extra_env", {}),
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe.base_url,
        "SEED_DEMO_PASSWORD": "",
    }
    try:
        with live_server(seed=False, extra_env=extra_env, **kwargs) as server:
            stripe.webhook_url = f"{server.url}/api/payment/webhook/"
            password = printed_demo_password(server.manage("seed_demo").stdout)
            yield server, password, stripe
    finally:
        stripe.stop()
