"""Throttles whose limits hold: counted atomically in the shared cache, per real client.

DRF's SimpleRateThrottle reads a list of timestamps, appends and writes it back. Two requests
read the same list at once and both pass, so N parallel password guesses all get through; and
with a per-process cache each gunicorn worker keeps its own list. Here every request is one
atomic increment (Redis INCR) of a counter that lives for the rate's period from the first
request, so exactly `num_requests` pass per period and client, across all workers
(production needs REDIS_URL: check --deploy fails without it, backend.E001).

The client is REMOTE_ADDR, or the address our own proxy put in X-Forwarded-For (NUM_PROXIES
from the right) when, and only when, REMOTE_ADDR is one of TRUSTED_PROXIES: a client that
reaches gunicorn directly cannot choose its identity by sending the header itself.
"""

import ipaddress
from typing import Any

from django.conf import settings
from rest_framework import throttling
from rest_framework.settings import api_settings

from backend.redis_cache import RedisAccess, redis_access

# A period's count on Redis (CountingRateThrottle._increment_in_redis). KEYS: the counter and
# the period's start; ARGV: the period in seconds and the start (as Django's cache stores it).
# The request that opens a period (count 1) gives the counter its expiry and records the
# start for Retry-After; a counter found without an expiry (left by anything else) gets one,
# so no counter ever lives past its period.
COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1])
end
if count == 1 or redis.call('TTL', KEYS[1]) == -1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""
# redis-py's Script: EVALSHA, loading the script first on a server that does not know it.
_count_script: Any = None


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted_proxy(remote_addr: str) -> bool:
    address = _address(remote_addr)
    if address is None:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.TRUSTED_PROXIES
    )


def client_ip(request: Any) -> str:
    """The address a request is counted under (see the module docstring)."""
    remote_addr = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    num_proxies = api_settings.NUM_PROXIES or 0
    if num_proxies <= 0 or not forwarded or not is_trusted_proxy(remote_addr):
        return remote_addr
    addresses = [item.strip() for item in forwarded.split(",")]
    candidate = addresses[-min(num_proxies, len(addresses))]
    # Whatever a proxy passed on that is not an address is not an identity either.
    return candidate if _address(candidate) is not None else remote_addr


class CountingRateThrottle(throttling.SimpleRateThrottle):
    """SimpleRateThrottle with an atomic counter per client and period (module docstring)."""

    # Set by SimpleRateThrottle.__init__ from the rate (drf-stubs does not declare them).
    num_requests: int
    duration: int

    def get_ident(self, request: Any) -> str:
        return client_ip(request)

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        count = self._increment(self.key)
        return count <= self.num_requests

    def _increment(self, key: str) -> int:
        redis = redis_access(self.cache)
        if redis is not None:
            return self._increment_in_redis(redis, key)
        for _ in range(2):
            if self.cache.add(key, 0, timeout=self.duration):
                # This request opens the period; remembered only for Retry-After.
                self.cache.set(f"{key}:start", self.now, timeout=self.duration)
            try:
                count = self.cache.incr(key)
            except ValueError:
                # The period ended between add and incr: open the next one.
                continue
            if count == 1:
                # Redis' INCR recreates a key that expired a moment before without any expiry;
                # the first count of a period makes sure it has one (it would never reset).
                self.cache.touch(key, self.duration)
            return count
        # Two periods ended under our feet: the cache is misbehaving; do not count.
        return 1

    def _increment_in_redis(self, redis: RedisAccess, key: str) -> int:
        # The add/incr/touch above in one round trip (it was five: Django's incr asks EXISTS
        # first), and atomic as a whole: Redis runs a script without interleaving others.
        global _count_script
        if _count_script is None:
            _count_script = redis.client.register_script(COUNT_SCRIPT)
        count = _count_script(
            keys=[redis.key(key), redis.key(f"{key}:start")],
            args=[self.duration, redis.dumps(self.now)],
            client=redis.client,
        )
        return int(count)

    def wait(self) -> float | None:
        started = self.cache.get(f"{self.key}:start")
        if started is None:
            return float(self.duration)
        return max(started + self.duration - self.now, 1.0)


# DRF's class first: its scope and cache key (and ScopedRateThrottle's own allow_request, which
# picks the view's scope and then calls ours) come before the counting.
class AnonRateThrottle(throttling.AnonRateThrottle, CountingRateThrottle):
    pass


class UserRateThrottle(throttling.UserRateThrottle, CountingRateThrottle):
    pass


class ScopedRateThrottle(throttling.ScopedRateThrottle, CountingRateThrottle):
    pass
