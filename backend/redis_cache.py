"""Django's Redis cache, with one redis-py client per connection pool instead of one per call.

Django's RedisCacheClient builds a new `redis.Redis` for every cache operation. redis-py 8
fills a table of some 170 response callbacks in each one: about 0.2 ms of CPU, more than the
round trip to a Redis on loopback, paid several times by every request (each throttle, the
catalog's page lookup). A `redis.Redis` is safe to share between threads (each command takes a
connection from the pool), and Django keeps one cache object per thread anyway; the pool
itself is Django's, so settings, pool options and fork handling stay as they were.

`redis_access(cache)` hands code that needs one round trip for several commands (a Lua script,
a pipeline) the client of a Django cache when, and only when, that cache is Redis.
"""

from dataclasses import dataclass
from typing import Any

from django.core.cache import BaseCache
from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # The pools live as long as this object, so their ids stay theirs. (django-stubs
        # declares none of Django's private attributes used here and below.)
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._client(connection_pool=pool)  # type: ignore[attr-defined]
            self._clients[id(pool)] = client
        return client


class RedisCache(django_redis.RedisCache):
    """`django.core.cache.backends.redis.RedisCache` with the client above (CACHES BACKEND)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


@dataclass(frozen=True)
class RedisAccess:
    """Direct access to the Redis behind a Django cache, in the cache's own terms."""

    cache: BaseCache
    cache_client: django_redis.RedisCacheClient
    client: Any  # the redis-py client

    def key(self, name: str) -> str:
        """The name `cache.get(name)` reads in Redis (key prefix and version applied)."""
        return self.cache.make_and_validate_key(name)

    def dumps(self, value: Any) -> Any:
        """`value` as `cache.set` stores it, so `cache.get` reads it back."""
        return self.cache_client._serializer.dumps(value)  # type: ignore[attr-defined]


def redis_access(cache: BaseCache) -> RedisAccess | None:
    """For code that needs several commands in one round trip (a Lua script, a pipeline) on
    a Django cache when, and only when, that cache is Redis; None otherwise (local memory in
    development and tests).

    `cache` may be `django.core.cache.cache` (a proxy to this thread's cache object: not an
    instance of any backend class itself). Django's RedisCache offers no public access to its
    client; the private names used here are stable since Django 4.0."""
    cache_client = getattr(cache, "_cache", None)
    if not isinstance(cache_client, django_redis.RedisCacheClient):
        return None
    return RedisAccess(
        cache=cache, cache_client=cache_client, client=cache_client.get_client(write=True)
    )
