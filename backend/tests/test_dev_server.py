"""`make run` (scripts/dev_server.py) without Stripe keys: the fake-payments mode.

The real script is started on free loopback ports with a temporary SQLite database, and the
paid flow is walked over HTTP the way README tells a frontend developer to: create-intent, pay
at the Stripe stand-in with a test payment method, the stand-in's signed webhook confirms.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.tests.fake_stripe import API_KEY
from scripts.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DevServer:
    url: str
    stripe_url: str
    log: Path
    process: subprocess.Popen

    def output(self) -> str:
        return self.log.read_text()

    @property
    def password(self) -> str:
        line = next(x for x in self.output().splitlines() if x.startswith("Demo password"))
        return line.rsplit(" ", 1)[1]


def call(method: str, url: str, body=None, *, token=None, form=None, basic=None):
    headers = {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:  # curl -u key:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic}:".encode()).decode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def start(tmp_path: Path, *, port: int, stripe_port: int) -> DevServer:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STRIPE_", "DATABASE_URL", "DJANGO_"))
    }
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        FAKE_STRIPE_PORT=str(stripe_port),
        FAKE_STRIPE_STATE=str(tmp_path / "fake_stripe.json"),
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        MEDIA_ROOT=str(tmp_path / "media"),
        STRIPE_SECRET_KEY="",  # wins over a developer's .env
        SEED_DEMO_PASSWORD="",
        LOG_LEVEL="WARNING",
    )
    log = tmp_path / f"dev_server_{port}.log"
    process = subprocess.Popen(
        [sys.executable, "scripts/dev_server.py", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    server = DevServer(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stripe_port}", log, process)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, server.output()[-3000:]
        try:
            if call("GET", f"{server.url}/api/health/")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("dev server did not come up:\n" + server.output()[-3000:])


def stop(server: DevServer) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory) -> Iterator[DevServer]:
    # One server for the tests that do not restart it: each uses its own demo account.
    server = start(tmp_path_factory.mktemp("dev"), port=free_port(), stripe_port=free_port())
    yield server
    stop(server)


def token(server: DevServer, username: str) -> str:
    status, body = call(
        "POST",
        f"{server.url}/api/auth/token/",
        {"username": username, "password": server.password},
    )
    assert status == 200, body
    return body["access"]


def wait_for_booking(server: DevServer, access: str, booking_id: int, **expected) -> dict:
    deadline = time.monotonic() + 20
    while True:
        booking = call("GET", f"{server.url}/api/bookings/{booking_id}/", token=access)[1]
        if all(booking[key] == value for key, value in expected.items()):
            return booking
        assert time.monotonic() < deadline, booking
        time.sleep(0.2)


def test_make_run_without_keys_starts_the_stand_in_and_prints_how_to_pay(dev_server):
    output = dev_server.output()
    assert f"Stripe stand-in serves {dev_server.stripe_url}" in output
    assert "pm_card_visa" in output
    assert "pm_card_chargeDeclined" in output
    # It binds loopback on the port it was told.
    assert f"Starting development server at {dev_server.url}/" in output
    # The password is repeated after the payments banner, just before the server's own output.
    banner = output.index("Fake payments:")
    assert output.index(f"Demo password (every demo account): {dev_server.password}", banner)


def test_paid_flow_with_curl_decline_then_pay_confirmed_by_the_signed_webhook(dev_server):
    access = token(dev_server, "dana")
    catalog = call("GET", f"{dev_server.url}/api/sessions/?min_price=1&ordering=price")[1]
    # The cheapest paid session dana has not booked yet.
    session = catalog["results"][0]
    status, booking = call(
        "POST", f"{dev_server.url}/api/bookings/", {"session": session["id"]}, token=access
    )
    assert status == 201, booking
    assert (booking["status"], booking["payment_status"]) == ("pending", "unpaid")
    status, intent = call(
        "POST",
        f"{dev_server.url}/api/payment/create-intent/",
        {"booking_id": booking["id"]},
        token=access,
    )
    assert status == 200, intent
    assert intent["publishable_key"].startswith("pk_test_")
    assert intent["amount"] == session["price"]
    confirm_url = (
        f"{dev_server.stripe_url}/v1/payment_intents/{intent['payment_intent_id']}/confirm"
    )

    status, declined = call(
        "POST", confirm_url, form={"payment_method": "pm_card_chargeDeclined"}, basic=API_KEY
    )
    assert status == 402
    assert declined["error"]["code"] == "card_declined"
    wait_for_booking(dev_server, access, booking["id"], status="pending", payment_status="failed")

    status, paid = call("POST", confirm_url, form={"payment_method": "pm_card_visa"}, basic=API_KEY)
    assert status == 200
    assert paid["status"] == "succeeded"
    # No call to /api/payment/confirm/: the stand-in's signed webhook confirms the booking.
    wait_for_booking(dev_server, access, booking["id"], status="confirmed", payment_status="paid")

    # And it can be refunded, like every paid booking.
    status, cancelled = call(
        "POST", f"{dev_server.url}/api/bookings/{booking['id']}/cancel/", token=access
    )
    assert status == 200, cancelled
    assert cancelled["payment_status"] == "refunded"


def test_an_unknown_payment_method_or_key_is_refused_by_the_stand_in(dev_server):
    access = token(dev_server, "emeka")
    pending = call("GET", f"{dev_server.url}/api/bookings/?status=pending", token=access)[1]
    booking_id = pending["results"][0]["id"]
    intent = call(
        "POST",
        f"{dev_server.url}/api/payment/create-intent/",
        {"booking_id": booking_id},
        token=access,
    )[1]
    confirm_url = (
        f"{dev_server.stripe_url}/v1/payment_intents/{intent['payment_intent_id']}/confirm"
    )
    status, body = call("POST", confirm_url, form={"payment_method": "pm_nope"}, basic=API_KEY)
    assert (status, body["error"]["code"]) == (400, "resource_missing")
    status, _ = call("POST", confirm_url, form={"payment_method": "pm_card_visa"}, basic="sk_x")
    assert status == 401
    # Stripe.js's way: the publishable key and the intent's client secret.
    status, paid = call(
        "POST",
        confirm_url,
        form={"payment_method": "pm_card_visa", "client_secret": intent["client_secret"]},
        basic=intent["publishable_key"],
    )
    assert (status, paid["status"]) == (200, "succeeded")
    # The client's confirm answers the same as the webhook.
    status, booking = call(
        "POST",
        f"{dev_server.url}/api/payment/confirm/",
        {"payment_intent_id": intent["payment_intent_id"]},
        token=access,
    )
    assert status == 200, booking
    assert (booking["status"], booking["payment_status"]) == ("confirmed", "paid")


def test_seeded_paid_bookings_refund_even_after_a_restart(tmp_path, ports):
    server = start(tmp_path, port=ports[0], stripe_port=ports[1])
    try:
        password = server.password
    finally:
        stop(server)
    # The stand-in keeps its intents in FAKE_STRIPE_STATE: the restarted one still knows them.
    server = start(tmp_path, port=ports[0], stripe_port=ports[1])
    try:
        assert "Passwords unchanged" in server.output()
        server_password = password
        refunded = 0
        for creator in ("alice_coach", "bruno_teacher", "chen_trainer"):
            status, body = call(
                "POST",
                f"{server.url}/api/auth/token/",
                {"username": creator, "password": server_password},
            )
            assert status == 200, body
            access = body["access"]
            sessions = call("GET", f"{server.url}/api/sessions/my_sessions/", token=access)[1]
            for session in sessions["results"]:
                attendees = call(
                    "GET", f"{server.url}/api/sessions/{session['id']}/bookings/", token=access
                )[1]
                for booking in attendees["results"]:
                    if booking["payment_status"] != "paid":
                        continue
                    status, cancelled = call(
                        "POST", f"{server.url}/api/bookings/{booking['id']}/cancel/", token=access
                    )
                    assert status == 200, cancelled
                    assert cancelled["payment_status"] == "refunded"
                    refunded += 1
        assert refunded == 6  # every paid demo booking
    finally:
        stop(server)
