"""What a request costs in Redis, and the throttles' counting on Redis itself.

Against a redis-server of the test's own (task_support.private_redis), so INFO commandstats
counts this test's commands only: a cached anonymous catalog page is one round trip for its
throttles (the anon and the user throttle in one Lua script: backend/throttling.py) and one for
the page (version tokens and page in one MGET: backend/catalog_cache.py). The throttles' rules
on Redis are the ones test_throttling.py proves on the local-memory cache: an exact count under
parallel requests, a counter and a period start that always expire, Retry-After from the
period's start; and the two default throttles counted together keep both limits.
"""

from collections import Counter
from types import SimpleNamespace

import pytest
import redis
from django.core.cache import cache
from django.test import override_settings
from rest_framework.throttling import SimpleRateThrottle

from backend.redis_cache import redis_access
from backend.tests.factories import SessionFactory
from backend.tests.support.concurrency import run_concurrently
from backend.tests.task_support import private_redis
from backend.throttling import (
    AnonAndUserRateThrottle,
    AnonRateThrottle,
    CountingRateThrottle,
    UserRateThrottle,
)

pytestmark = pytest.mark.django_db

LIST = "/api/sessions/"
PREFIX = "rt"


@pytest.fixture
def redis_server():
    """The default cache on a private Redis (the production backend); its raw client.

    The cache goes back to local memory before the server stops (the plugin clears it after
    every test)."""
    with private_redis() as server:
        cache_there = {
            "default": {
                "BACKEND": "backend.redis_cache.RedisCache",
                "LOCATION": server.url,
                "KEY_PREFIX": PREFIX,
            }
        }
        with override_settings(CACHES=cache_there):
            yield redis.Redis.from_url(server.url)


def commands_during(server: redis.Redis, action) -> Counter:
    """The commands Redis ran while `action` ran, by name. Redis counts the commands a Lua
    script runs as well (INCR and TTL inside the throttle's EVALSHA); the round trips are the
    commands clients sent: EVALSHA and MGET here."""
    server.config_resetstat()
    action()
    stats = server.info("commandstats")
    counted = Counter(
        {name.removeprefix("cmdstat_"): values["calls"] for name, values in stats.items()}
    )
    # Ours: CONFIG RESETSTAT is counted after its reset, INFO before it answers.
    counted.pop("config|resetstat", None)
    counted.pop("info", None)
    return counted


# --- Round trips per request -----------------------------------------------------------------


def test_a_cached_anonymous_page_costs_two_round_trips(
    api_client, redis_server, catalog_cache_on, django_assert_num_queries
):
    session = SessionFactory()
    detail = f"/api/sessions/{session.pk}/"
    first_list, first_detail = api_client.get(LIST), api_client.get(detail)
    assert first_list.status_code == first_detail.status_code == 200

    answers = []

    def read_five_times() -> None:
        with django_assert_num_queries(0):
            for _ in range(5):
                answers.append(api_client.get(LIST))
                answers.append(api_client.get(detail))
                answers.append(api_client.get(LIST, HTTP_IF_NONE_MATCH=first_list["ETag"]))

    # Per request: the anon and the user throttle (both count anonymous readers) in one
    # script; the page with its version tokens, one MGET. Nothing else, not even for a 304.
    assert commands_during(redis_server, read_five_times) == {
        "evalsha": 15,
        "mget": 15,
        # Inside the throttles' script, one of each per throttle: in Redis, no round trips.
        "incr": 30,
        "ttl": 30,
    }
    assert [answer.status_code for answer in answers] == [200, 200, 304] * 5
    assert {answer.content for answer in answers[0::3]} == {first_list.content}
    assert {answer.content for answer in answers[1::3]} == {first_detail.content}


def test_a_throttle_of_its_own_is_one_round_trip(redis_server):
    throttle = FiveAMinute()
    throttle.allow_request(meta("203.0.113.5"), None)  # opens the period

    def count_twice() -> None:
        for _ in range(2):
            assert FiveAMinute().allow_request(meta("203.0.113.5"), None)

    assert commands_during(redis_server, count_twice) == {"evalsha": 2, "incr": 2, "ttl": 2}


# --- Counting on Redis ---------------------------------------------------------------------


class FiveAMinute(CountingRateThrottle):
    rate = "5/minute"

    def get_cache_key(self, request, view) -> str:
        return "throttle_test_five"


COUNTER = f"{PREFIX}:1:throttle_test_five"
START = f"{COUNTER}:start"


def meta(remote_addr: str) -> SimpleNamespace:
    return SimpleNamespace(META={"REMOTE_ADDR": remote_addr})


def test_the_throttle_counts_in_redis_itself(redis_server):
    # The cache really is Redis here, so the Lua path is the one under test.
    assert redis_access(cache) is not None
    results = [FiveAMinute().allow_request(meta("203.0.113.5"), None) for _ in range(6)]
    assert results == [True] * 5 + [False]
    assert int(redis_server.get(COUNTER)) == 6


def test_parallel_requests_on_redis_cannot_all_pass(redis_server):
    # 20 at once on an empty counter, each thread with its own cache object and connection.
    def attempt() -> bool:
        return FiveAMinute().allow_request(meta("203.0.113.5"), None)

    allowed = run_concurrently([attempt] * 20, raise_errors=True)
    assert Counter(allowed) == {True: 5, False: 15}
    assert int(redis_server.get(COUNTER)) == 20


def test_the_counter_and_the_period_start_expire_with_the_period(redis_server):
    FiveAMinute().allow_request(meta("203.0.113.5"), None)
    assert 0 < redis_server.ttl(COUNTER) <= 60
    assert 0 < redis_server.ttl(START) <= 60


def test_a_counter_found_without_expiry_gets_one(redis_server):
    # Left by anything else (an older release's INCR of an expired key): it would never reset.
    redis_server.set(COUNTER, 3)
    assert FiveAMinute().allow_request(meta("203.0.113.5"), None)
    assert int(redis_server.get(COUNTER)) == 4
    assert 0 < redis_server.ttl(COUNTER) <= 60


def test_retry_after_counts_from_the_start_of_the_period(redis_server, monkeypatch):
    clock = {"now": 1_000_000.0}
    monkeypatch.setattr(FiveAMinute, "timer", lambda self: clock["now"])
    results = []
    for step in range(6):
        clock["now"] = 1_000_000.0 + step
        throttle = FiveAMinute()
        results.append(throttle.allow_request(meta("203.0.113.5"), None))
    assert results == [True] * 5 + [False]
    assert throttle.wait() == 55.0

    # The period ends (Redis expires both keys): the next request opens a new one, from now.
    redis_server.delete(COUNTER, START)
    clock["now"] = 1_000_100.0
    assert FiveAMinute().allow_request(meta("203.0.113.5"), None)
    assert int(redis_server.get(COUNTER)) == 1
    clock["now"] = 1_000_110.0
    later = FiveAMinute()
    later.allow_request(meta("203.0.113.5"), None)
    assert later.wait() == 50.0


def test_a_throttled_api_answer_on_redis_says_when_to_retry(api_client, redis_server, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "auth": "3/minute",
        },
    }
    refresh = "/api/auth/token/refresh/"
    statuses = [
        api_client.post(refresh, {"refresh": "x"}, REMOTE_ADDR="203.0.113.8").status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    throttled = api_client.post(refresh, {"refresh": "x"}, REMOTE_ADDR="203.0.113.8")
    assert throttled.json()["code"] == "throttled"
    assert 1 <= int(throttled["Retry-After"]) <= 60


# --- The anon and the user throttle, counted together ---------------------------------------


@pytest.fixture(params=["local memory", "redis"])
def either_cache(request):
    """Both counting paths: the local-memory cache of development and tests, and Redis."""
    if request.param == "redis":
        return request.getfixturevalue("redis_server")
    return None


def default_rates(monkeypatch, *, anon: str, user: str) -> None:
    # DRF's throttles read their rates from a class attribute set at import time.
    rates = {**SimpleRateThrottle.THROTTLE_RATES, "anon": anon, "user": user}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)


@pytest.mark.parametrize(
    ("anon", "user", "allowed"), [("3/minute", "5/minute", 3), ("5/minute", "2/minute", 2)]
)
def test_an_anonymous_reader_meets_the_lower_of_both_limits(
    api_client, either_cache, monkeypatch, anon, user, allowed
):
    default_rates(monkeypatch, anon=anon, user=user)
    statuses = [api_client.get(LIST).status_code for _ in range(allowed + 2)]
    assert statuses == [200] * allowed + [429, 429]
    throttled = api_client.get(LIST)
    assert throttled.json()["code"] == "throttled"
    assert 1 <= int(throttled["Retry-After"]) <= 60


def test_a_signed_in_reader_meets_the_user_limit_only(user_client, either_cache, monkeypatch):
    # Not the anon limit: AnonRateThrottle counts no signed-in request.
    default_rates(monkeypatch, anon="1/minute", user="3/minute")
    statuses = [user_client.get(LIST).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_wait_is_the_longest_of_the_limits_refused(redis_server, monkeypatch):
    default_rates(monkeypatch, anon="2/minute", user="3/hour")
    clock = {"now": 1_000_000.0}
    for part in (AnonRateThrottle, UserRateThrottle):
        monkeypatch.setattr(part, "timer", lambda self: clock["now"])
    request = SimpleNamespace(
        META={"REMOTE_ADDR": "203.0.113.9"}, user=SimpleNamespace(is_authenticated=False)
    )
    results = []
    for step in range(4):
        clock["now"] = 1_000_000.0 + 10 * step
        throttle = AnonAndUserRateThrottle()
        results.append(throttle.allow_request(request, None))
    assert results == [True, True, False, False]
    # At t=30 both refuse: the minute opened at t=0 has 30 s left, the hour 3,570 s.
    assert throttle.wait() == 3570.0
