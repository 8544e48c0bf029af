"""Throttles that hold: per real client (X-Forwarded-For only from a trusted proxy), counted
atomically, and in total across gunicorn workers when the cache is Redis."""

import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from types import SimpleNamespace

import pytest
from django.core.cache import cache

from backend.tests.support.concurrency import run_concurrently
from backend.throttling import CountingRateThrottle, client_ip
from scripts.live_server import live_server

REFRESH_URL = "/api/auth/token/refresh/"
# The Redis database the suite may use (TEST_REDIS_URL, as the other Redis tests; CI: .ci/run),
# or one for this test alone; nothing else is written to (counters under a random prefix,
# removed after). Without either the three-worker proof is skipped.
REDIS_URL = os.environ.get("THROTTLE_TEST_REDIS_URL") or os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture
def auth_rate(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "auth": "3/minute",
        },
    }


@pytest.fixture
def behind_nginx(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def refresh_garbage(client, **meta):
    return client.post(REFRESH_URL, {"refresh": "garbage"}, **meta).status_code


def meta(remote_addr: str, forwarded: str | None = None) -> SimpleNamespace:
    values = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        values["HTTP_X_FORWARDED_FOR"] = forwarded
    return SimpleNamespace(META=values)


# --- Which address a request counts under ----------------------------------------------------


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(behind_nginx):
    # Default TRUSTED_PROXIES: loopback, where nginx runs next to gunicorn.
    assert client_ip(meta("127.0.0.1", "203.0.113.5")) == "203.0.113.5"
    assert client_ip(meta("::1", "2001:db8::7")) == "2001:db8::7"
    assert client_ip(meta("::ffff:127.0.0.1", "203.0.113.5")) == "203.0.113.5"
    # A client that reaches gunicorn directly sends whatever it likes: ignored.
    assert client_ip(meta("198.51.100.20", "203.0.113.5")) == "198.51.100.20"
    # The proxy's own (rightmost) entry counts, not what the client prepended.
    assert client_ip(meta("127.0.0.1", "1.2.3.4, 203.0.113.5")) == "203.0.113.5"
    # Not an address: not an identity either.
    assert client_ip(meta("127.0.0.1", "<script>")) == "127.0.0.1"
    assert client_ip(meta("127.0.0.1")) == "127.0.0.1"


def test_without_proxies_forwarded_for_is_never_read():
    # NUM_PROXIES=0 (the default): even loopback's header is ignored.
    assert client_ip(meta("127.0.0.1", "203.0.113.5")) == "127.0.0.1"


def test_trusted_proxies_are_configurable(settings, behind_nginx):
    settings.TRUSTED_PROXIES = ["172.16.0.0/12"]
    assert client_ip(meta("172.18.0.5", "203.0.113.5")) == "203.0.113.5"
    assert client_ip(meta("127.0.0.1", "203.0.113.5")) == "127.0.0.1"


@pytest.mark.django_db
def test_a_direct_client_cannot_escape_the_auth_limit_by_forging_forwarded_for(
    api_client, auth_rate, behind_nginx
):
    # NUM_PROXIES=1 as in production, but this peer is no proxy of ours.
    statuses = [
        refresh_garbage(
            api_client, REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        )
        for n in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


@pytest.mark.django_db
def test_behind_the_trusted_proxy_each_client_has_its_own_limit(
    api_client, auth_rate, behind_nginx
):
    via_nginx = {"REMOTE_ADDR": "127.0.0.1"}
    first = [
        refresh_garbage(api_client, HTTP_X_FORWARDED_FOR="203.0.113.5", **via_nginx)
        for _ in range(4)
    ]
    other = refresh_garbage(api_client, HTTP_X_FORWARDED_FOR="203.0.113.6", **via_nginx)
    assert (first, other) == ([401, 401, 401, 429], 401)


@pytest.mark.django_db
def test_a_throttled_answer_says_when_to_retry(api_client, auth_rate):
    for _ in range(3):
        refresh_garbage(api_client, REMOTE_ADDR="203.0.113.8")
    throttled = api_client.post(REFRESH_URL, {"refresh": "x"}, REMOTE_ADDR="203.0.113.8")
    assert throttled.status_code == 429
    # The minute opened with the first request, a moment ago.
    assert 1 <= int(throttled["Retry-After"]) <= 60


# --- Counting is atomic -------------------------------------------------------------------------


class FiveAMinute(CountingRateThrottle):
    rate = "5/minute"

    def get_cache_key(self, request, view) -> str:
        return "throttle_test_five"


def test_parallel_requests_cannot_all_pass_on_one_empty_history():
    # DRF's own throttle reads the history, checks it and writes it back: requests that read
    # it together all pass. An increment cannot be shared.
    def attempt() -> bool:
        return FiveAMinute().allow_request(meta("203.0.113.5"), None)

    allowed = run_concurrently([attempt] * 20, raise_errors=True)
    assert Counter(allowed) == {True: 5, False: 15}


def test_the_period_starts_with_the_first_request_and_retry_after_counts_down(monkeypatch):
    clock = {"now": 1_000_000.0}
    monkeypatch.setattr(FiveAMinute, "timer", lambda self: clock["now"])
    results = []
    for step in range(6):
        clock["now"] = 1_000_000.0 + step
        throttle = FiveAMinute()
        results.append(throttle.allow_request(meta("203.0.113.5"), None))
    assert results == [True] * 5 + [False]
    # Opened at t=0, now t=5: 55 s of the minute are left.
    assert throttle.wait() == 55.0


def test_a_counter_always_expires(monkeypatch):
    throttle = FiveAMinute()
    assert throttle.allow_request(meta("203.0.113.5"), None)
    # The counter and its start carry the rate's period as their expiry (locmem: its table).
    expiries = cache._expire_info
    keys = [key for key in expiries if "throttle_test_five" in key]
    assert len(keys) == 2
    assert all(expiries[key] is not None for key in keys)


# --- Three gunicorn workers, one limit --------------------------------------------------------


def redis_client():
    import redis

    if not REDIS_URL:
        return None
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        return None
    return client


def post_login(url: str) -> int:
    request = urllib.request.Request(  # noqa: S310 (loopback server of this test)
        f"{url}/api/auth/token/",
        data=b'{"username": "nobody", "password": "guess-1234"}',
        headers={"Content-Type": "application/json"},
    )
    try:
        # Generous: each allowed guess runs a full password hash (Django hashes even for an
        # unknown user), a dozen of them at once on a machine that may be busy with other work.
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.skipif(
    redis_client() is None, reason=f"needs TEST_REDIS_URL, a Redis that answers ({REDIS_URL!r})"
)
def test_the_auth_limit_holds_in_total_across_three_gunicorn_workers():
    # Guesses arrive together, as a guesser sends them: 24 at once, twice each, to 3 workers of
    # 4 threads. Per-process counting allows `limit` per worker; DRF's read-check-write lets
    # requests that read the same history pass together even in a shared cache.
    limit, clients, attempts_each = 12, 24, 2
    prefix = f"sm-throttle-test-{secrets.token_hex(4)}"
    redis = redis_client()
    extra_env = {
        "REDIS_URL": REDIS_URL,
        "CACHE_KEY_PREFIX": prefix,
        # An hour, so the whole test falls inside one period whatever the machine's speed.
        "THROTTLE_AUTH_RATE": f"{limit}/hour",
        # Which worker (pid) answered each request.
        "GUNICORN_CMD_ARGS": "--access-logfile - --access-logformat 'worker=%(p)s %(s)s %(U)s'",
    }
    try:
        with live_server(
            suffix="throttle", workers=3, threads=4, seed=False, extra_env=extra_env
        ) as server:
            statuses: list[int | str] = []
            lock = threading.Lock()
            start = threading.Barrier(clients)

            def guess() -> None:
                start.wait()
                for _ in range(attempts_each):
                    status: int | str
                    try:
                        status = post_login(server.url)
                    except OSError as error:  # recorded, so a lost answer shows in the failure
                        status = f"no answer: {error!r}"
                    with lock:
                        statuses.append(status)

            threads = [threading.Thread(target=guess) for _ in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            def access_lines() -> list[tuple[str, str]]:
                text = server.log_path.read_text()
                return re.findall(r"worker=<(\d+)> (\d{3}) /api/auth/token/", text)

            # gunicorn writes an access line after it has sent the answer: the last ones may
            # land a moment after their clients returned (reading at once once missed one).
            deadline = time.monotonic() + 30
            while len(access_lines()) < len(statuses) and time.monotonic() < deadline:
                time.sleep(0.1)
            log = server.log_path.read_text()
    finally:
        for key in redis.scan_iter(f"{prefix}:*"):
            redis.delete(key)

    total = clients * attempts_each
    assert Counter(statuses) == {401: limit, 429: total - limit}, log[-2000:]
    answered_by = Counter(
        worker
        for worker, status in re.findall(r"worker=<(\d+)> (\d{3}) /api/auth/token/", log)
        if status == "401"
    )
    # The allowed guesses were spread over the workers: per-process counting would have
    # allowed `limit` in each of them.
    assert len(answered_by) >= 2, log[-2000:]
    assert sum(answered_by.values()) == limit
