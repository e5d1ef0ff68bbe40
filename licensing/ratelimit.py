"""Rate limits of the licensing endpoints: GCRA (a smoothed sliding window) in Redis, atomic
in one Lua script, so concurrent requests from any number of web processes cannot exceed it.

When Redis does not answer, the same algorithm runs in process memory (per process, under a
lock): the fallback is logged once, reported as `backend: memory`, and Redis is tried again
after `RETRY_REDIS_SECONDS`. A limit "N/period" lets a burst of N through, then one request
every period/N.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from accounts.errors import RateLimitedError
from delivery.ratelimit import parse_rate

from .redis_client import redis_for

logger = logging.getLogger(__name__)
RETRY_REDIS_SECONDS = 30.0
KEY_PREFIX = "licensing:rl:"

# KEYS[1]: the bucket. ARGV: interval_ms, period_ms, cost (0: only look).
# Returns {allowed, remaining, retry_after_ms, reset_after_ms}; time from Redis itself, so
# every web process agrees on it.
_GCRA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - period
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
if cost > 0 then
  redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
end
return {1, math.floor((period - (new_tat - now)) / interval), 0, new_tat - now}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # seconds until one more request is allowed (0 when allowed)
    reset_after: float  # seconds until the full burst is available again
    backend: str  # "redis" | "memory"

    @property
    def reset_at(self) -> float:
        return time.time() + self.reset_after

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(math.ceil(self.reset_after)),
        }


class MemoryLimiter:
    """GCRA in a dict under a lock: what one process can do without Redis."""

    def __init__(self):
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, period: float, cost: int) -> Decision:
        interval = period / limit
        with self._lock:
            now = time.time()
            tat = max(self._tats.get(key, now), now)
            new_tat = tat + interval * cost
            allow_at = new_tat - period
            if allow_at > now:
                return Decision(False, limit, 0, allow_at - now, tat - now, "memory")
            if cost:
                self._tats[key] = new_tat
                if len(self._tats) > 100_000:  # forget buckets already full again
                    self._tats = {k: v for k, v in self._tats.items() if v > now}
            remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
            return Decision(True, limit, remaining, 0.0, new_tat - now, "memory")


class Limiter:
    def __init__(self, url: str):
        self.url = url
        self.memory = MemoryLimiter()
        self._script = None
        self._down_until = 0.0
        self._warned = False

    def _redis_hit(self, key, limit, period, cost) -> Decision:
        client = redis_for(self.url)
        if self._script is None:
            self._script = client.register_script(_GCRA)
        interval_ms = period * 1000 / limit
        allowed, remaining, retry_ms, reset_ms = self._script(
            keys=[KEY_PREFIX + key], args=[interval_ms, period * 1000, cost], client=client
        )
        return Decision(
            bool(allowed), limit, int(remaining), retry_ms / 1000, reset_ms / 1000, "redis"
        )

    def hit(self, key: str, limit: int, period: float, cost: int = 1) -> Decision:
        if self.url and time.monotonic() >= self._down_until:
            try:
                decision = self._redis_hit(key, limit, period, cost)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self._down_until = time.monotonic() + RETRY_REDIS_SECONDS
                if not self._warned:
                    self._warned = True
                    logger.warning(
                        "rate limiter: Redis did not answer, limiting in process memory",
                        extra={"error": str(exc)},
                    )
            else:
                if self._warned:
                    self._warned = False
                    logger.info("rate limiter: Redis answers again")
                return decision
        return self.memory.hit(key, limit, period, cost)

    @property
    def backend(self) -> str:
        return "redis" if self.url and time.monotonic() >= self._down_until else "memory"


_limiter: Limiter | None = None
_limiter_lock = threading.Lock()


def get_limiter() -> Limiter:
    global _limiter
    if _limiter is None:
        with _limiter_lock:
            if _limiter is None:
                _limiter = Limiter(settings.LICENSE_RATE_LIMIT_REDIS_URL)
    return _limiter


@receiver(setting_changed)
def _forget_limiter(*, setting, **kwargs):
    global _limiter
    if setting.startswith("LICENSE_") or setting == "REDIS_URL":
        _limiter = None


def rate_limit_check(*, scope: str, ident: str, rate: str, cost: int = 1) -> Decision:
    """Count one request of `ident` on `scope` at `rate` ("60/min"); over it: 429."""
    limit, period = parse_rate(rate)
    decision = get_limiter().hit(f"{scope}:{ident}", limit, period, cost)
    if not decision.allowed:
        error = RateLimitedError(
            "Too many requests; try again later.",
            retry_after=max(1, math.ceil(decision.retry_after)),
        )
        error.rate_limit = decision
        raise error
    return decision


def rate_limit_peek(*, scope: str, ident: str, rate: str) -> Decision:
    """Where `ident` stands on `scope`, without counting a request."""
    limit, period = parse_rate(rate)
    return get_limiter().hit(f"{scope}:{ident}", limit, period, cost=0)
