"""A Redis cache that keeps the site answering while Redis is down or frozen.

The cache holds rate-limit counters and cached reads, nothing that must not be lost. While Redis is
unreachable the portal fails open: every call answers as an empty cache would (reads miss, writes are
dropped, rate limits count nothing), a warning is logged, and for `REDIS_RETRY_SECONDS` no call
waits on Redis again. Sign-in, sessions (in the database) and every page keep working; only the rate
limits are off until Redis is back. Socket timeouts (`REDIS_SOCKET_TIMEOUT`) bound the first wait.
"""

import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class FailOpenRedisCache(RedisCache):
    """Django's Redis cache, answering as an empty cache while Redis cannot be reached."""

    def __init__(self, server, params):
        options = dict(params.get("OPTIONS", {}))
        self.retry_seconds = float(options.pop("RETRY_SECONDS", 5))
        super().__init__(server, {**params, "OPTIONS": options})
        self._down_until = 0.0

    def _attempt(self, operation: str, call, fallback):
        if time.monotonic() < self._down_until:
            return fallback
        try:
            return call()
        except RedisError as error:
            self._down_until = time.monotonic() + self.retry_seconds
            logger.warning(
                "cache: Redis unreachable during %s (%s); answering as an empty cache for %.0f s, rate limits are off",
                operation,
                type(error).__name__,
                self.retry_seconds,
            )
            return fallback

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        # An empty cache takes every add; answering False would hold allauth's rate-limit lock forever.
        return self._attempt("add", lambda: super(FailOpenRedisCache, self).add(key, value, timeout, version), True)

    def get(self, key, default=None, version=None):
        return self._attempt("get", lambda: super(FailOpenRedisCache, self).get(key, default, version), default)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._attempt("set", lambda: super(FailOpenRedisCache, self).set(key, value, timeout, version), None)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._attempt("touch", lambda: super(FailOpenRedisCache, self).touch(key, timeout, version), False)

    def delete(self, key, version=None):
        return self._attempt("delete", lambda: super(FailOpenRedisCache, self).delete(key, version), False)

    def get_many(self, keys, version=None):
        return self._attempt("get_many", lambda: super(FailOpenRedisCache, self).get_many(keys, version), {})

    def has_key(self, key, version=None):
        return self._attempt("has_key", lambda: super(FailOpenRedisCache, self).has_key(key, version), False)

    def incr(self, key, delta=1, version=None):
        return self._attempt("incr", lambda: super(FailOpenRedisCache, self).incr(key, delta, version), delta)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._attempt(
            "set_many", lambda: super(FailOpenRedisCache, self).set_many(data, timeout, version), list(data)
        )

    def delete_many(self, keys, version=None):
        self._attempt("delete_many", lambda: super(FailOpenRedisCache, self).delete_many(keys, version), None)

    def clear(self):
        return self._attempt("clear", lambda: super(FailOpenRedisCache, self).clear(), False)
