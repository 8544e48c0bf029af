"""Throttles whose limits hold: counted atomically in the shared cache, per real client.

DRF's SimpleRateThrottle reads a list of timestamps, appends and writes it back. Two requests
read the same list at once and both pass, so N parallel password guesses all get through; and
with a per-process cache each gunicorn worker keeps its own list. Here every request is one
atomic increment (Redis INCR, in a script that also sets the expiry: one round trip) of a
counter that lives for the rate's period from the first request, so exactly `num_requests`
pass per period and client, across all workers (production needs REDIS_URL: check --deploy
fails without it, backend.E001).

The client is REMOTE_ADDR, or the address our own proxy put in X-Forwarded-For (NUM_PROXIES
from the right) when, and only when, REMOTE_ADDR is one of TRUSTED_PROXIES: a client that
reaches gunicorn directly cannot choose its identity by sending the header itself.
"""

import ipaddress
from typing import Any

from django.conf import settings
from rest_framework import throttling
from rest_framework.settings import api_settings

from backend.redis_cache import redis_access

# Periods' counts on Redis (count_together), one throttle or several in one round trip. KEYS:
# each throttle's counter and period start, in pairs; ARGV: each one's period in seconds and
# start (as Django's cache stores it), in the same pairs. The request that opens a period
# (count 1) gives the counter its expiry and records the start for Retry-After; a counter
# found without an expiry (left by anything else) gets one, so no counter outlives its period.
COUNT_SCRIPT = """
local counts = {}
for i = 1, #KEYS, 2 do
  local counter, period = KEYS[i], ARGV[i]
  local count = redis.call('INCR', counter)
  if count == 1 then
    redis.call('SET', KEYS[i + 1], ARGV[i + 1], 'EX', period)
  end
  if count == 1 or redis.call('TTL', counter) == -1 then
    redis.call('EXPIRE', counter, period)
  end
  counts[#counts + 1] = count
end
return counts
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
    # Set by counts_request() before anything counts or waits.
    key: str

    def get_ident(self, request: Any) -> str:
        return client_ip(request)

    def allow_request(self, request: Any, view: Any) -> bool:
        if not self.counts_request(request, view):
            return True
        (count,) = count_together([self])
        return count <= self.num_requests

    def counts_request(self, request: Any, view: Any) -> bool:
        """Whether this request is counted here (a rate, a key); if so, its key and time."""
        if self.rate is None:
            return False
        key = self.get_cache_key(request, view)
        if key is None:
            return False
        self.key = key
        self.now = self.timer()
        return True

    def _increment(self, key: str) -> int:
        """The count on a cache that is not Redis (local memory: development and tests)."""
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

    def wait(self) -> float | None:
        started = self.cache.get(f"{self.key}:start")
        if started is None:
            return float(self.duration)
        return max(started + self.duration - self.now, 1.0)


def count_together(throttles: list[CountingRateThrottle]) -> list[int]:
    """Each throttle's count for this request (`counts_request()` said yes to each). On Redis all in
    one round trip (a script: atomic as a whole, nothing interleaves), instead of three per
    throttle (five when a period opens; Django's incr asks EXISTS first)."""
    redis = redis_access(throttles[0].cache)
    if redis is None:
        return [throttle._increment(throttle.key) for throttle in throttles]
    global _count_script
    if _count_script is None:
        _count_script = redis.client.register_script(COUNT_SCRIPT)
    keys: list[str] = []
    args: list[Any] = []
    for throttle in throttles:
        keys += [redis.key(throttle.key), redis.key(f"{throttle.key}:start")]
        args += [throttle.duration, redis.dumps(throttle.now)]
    return [int(count) for count in _count_script(keys=keys, args=args, client=redis.client)]


# DRF's class first: its scope and cache key (and ScopedRateThrottle's own allow_request, which
# picks the view's scope and then calls ours) come before the counting.
class AnonRateThrottle(throttling.AnonRateThrottle, CountingRateThrottle):
    pass


class UserRateThrottle(throttling.UserRateThrottle, CountingRateThrottle):
    pass


class ScopedRateThrottle(throttling.ScopedRateThrottle, CountingRateThrottle):
    pass


class AnonAndUserRateThrottle(throttling.BaseThrottle):
    """The anon and the user throttle (DEFAULT_THROTTLE_CLASSES), counted in one round trip.

    The same counters, limits and Retry-After as listing the two classes: DRF counts every
    throttle of a view, then refuses with the longest wait of those that refused. Anonymous
    readers are counted by both (the user throttle counts them by address), so the cached
    catalog saves a round trip on every request."""

    parts = (AnonRateThrottle, UserRateThrottle)

    def __init__(self) -> None:
        self.throttles: list[CountingRateThrottle] = [part() for part in self.parts]
        self.refused: list[CountingRateThrottle] = []

    def allow_request(self, request: Any, view: Any) -> bool:
        counted = [
            throttle for throttle in self.throttles if throttle.counts_request(request, view)
        ]
        if not counted:
            return True
        counts = count_together(counted)
        self.refused = [
            throttle
            for throttle, count in zip(counted, counts, strict=True)
            if count > throttle.num_requests
        ]
        return not self.refused

    def wait(self) -> float | None:
        waits = [throttle.wait() for throttle in self.refused]
        return max((wait for wait in waits if wait is not None), default=None)
