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
from functools import lru_cache

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from core.errors import RateLimitedError
from delivery.ratelimit import parse_rate

from .redis_client import redis_for

logger = logging.getLogger(__name__)
RETRY_REDIS_SECONDS = 30.0
KEY_PREFIX = "licensing:rl:"

# The GCRA over the buckets KEYS[1..n], in order. ARGV[1]: n; ARGV[2]: cost (0: only look);
# then interval_ms and period_ms of each bucket. Stops at the first bucket that refuses (it
# counts nothing in the buckets after it; those before keep their count, as separate checks
# would) and leaves `refused` (0, or that bucket's 1-based index), `remaining`, `retry` and
# `reset` (ms) of the refusing bucket, else of the last one. Time from Redis itself, so every
# web process agrees on it; one script, so concurrent requests cannot interleave. A script
# made of LIMITS_LUA and its own lines may use the KEYS and ARGV after the buckets' and
# returns {refused, remaining, retry, reset, ...its own values}.
LIMITS_LUA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local n = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local refused, remaining, retry, reset = 0, 0, 0, 0
for i = 1, n do
  local interval = tonumber(ARGV[1 + 2 * i])
  local period = tonumber(ARGV[2 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - period
  if allow_at > now then
    refused, remaining, retry, reset = i, 0, allow_at - now, tat - now
    break
  end
  if cost > 0 then
    redis.call('SET', KEYS[i], new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
  end
  remaining = math.floor((period - (new_tat - now)) / interval)
  reset = new_tat - now
end
"""
_LIMITS_ONLY = LIMITS_LUA + "return {refused, remaining, retry, reset}\n"


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
        self._scripts: dict[str, object] = {}
        self._down_until = 0.0
        self._warned = False

    def _redis_hit_all(self, buckets, cost, script, extra_keys, extra_args):
        client = redis_for(self.url)
        registered = self._scripts.get(script)
        if registered is None:
            registered = self._scripts[script] = client.register_script(script)
        args = [len(buckets), cost]
        for _, limit, period in buckets:
            args += [period * 1000 / limit, period * 1000]
        reply = registered(
            keys=[*(KEY_PREFIX + key for key, _, _ in buckets), *extra_keys],
            args=[*args, *extra_args],
            client=client,
        )
        refused, remaining, retry_ms, reset_ms = reply[:4]
        limit = buckets[refused - 1 if refused else -1][1]
        decision = Decision(
            not refused, limit, int(remaining), retry_ms / 1000, reset_ms / 1000, "redis"
        )
        return decision, reply[4:]

    def hit_all(
        self,
        buckets: list[tuple[str, int, float]],
        *,
        cost: int = 1,
        script: str = _LIMITS_ONLY,
        extra_keys: tuple = (),
        extra_args: tuple = (),
    ) -> tuple[Decision, list | None]:
        """Count a request in each of `buckets` ((key, limit, period)), in order, up to the
        first that refuses. Returns that bucket's decision (else the last one's) and what
        `script` (LIMITS_LUA and more) returned after the limits' four figures, or None when
        Redis did not answer and process memory decided."""
        if self.url and time.monotonic() >= self._down_until:
            try:
                result = self._redis_hit_all(buckets, cost, script, extra_keys, extra_args)
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
                return result
        decision = None
        for key, limit, period in buckets:
            decision = self.memory.hit(key, limit, period, cost)
            if not decision.allowed:
                break
        assert decision is not None  # every call counts on one bucket at least
        return decision, None

    def hit(self, key: str, limit: int, period: float, cost: int = 1) -> Decision:
        return self.hit_all([(key, limit, period)], cost=cost)[0]

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


@lru_cache(maxsize=64)
def _parsed(rate: str) -> tuple[int, int]:
    return parse_rate(rate)


def rate_limit_error(decision: Decision) -> RateLimitedError:
    """The 429 of a refusal, carrying the decision (for the X-RateLimit-* headers)."""
    error = RateLimitedError(
        "Too many requests; try again later.",
        retry_after=max(1, math.ceil(decision.retry_after)),
    )
    # Read by the 429 handler; declaring it belongs with RateLimitedError (accounts/errors.py).
    error.rate_limit = decision  # type: ignore[attr-defined]
    return error


def rate_limit_hit_all(
    *,
    checks: list[tuple[str, str, str]],
    script: str = _LIMITS_ONLY,
    extra_keys: tuple = (),
    extra_args: tuple = (),
) -> tuple[Decision, list | None]:
    """Count one request on each (scope, ident, rate), in order, in one Redis round trip that
    may do more (`script`: LIMITS_LUA and its own lines, see `Limiter.hit_all`). Refuses
    nothing itself: the caller raises `rate_limit_error(decision)` when not allowed."""
    buckets: list[tuple[str, int, float]] = [
        (f"{scope}:{ident}", *_parsed(rate)) for scope, ident, rate in checks
    ]
    return get_limiter().hit_all(
        buckets, script=script, extra_keys=extra_keys, extra_args=extra_args
    )


def rate_limit_check(*, scope: str, ident: str, rate: str, cost: int = 1) -> Decision:
    """Count one request of `ident` on `scope` at `rate` ("60/min"); over it: 429."""
    limit, period = _parsed(rate)
    decision = get_limiter().hit(f"{scope}:{ident}", limit, period, cost)
    if not decision.allowed:
        raise rate_limit_error(decision)
    return decision


def rate_limit_peek(*, scope: str, ident: str, rate: str) -> Decision:
    """Where `ident` stands on `scope`, without counting a request."""
    limit, period = _parsed(rate)
    return get_limiter().hit(f"{scope}:{ident}", limit, period, cost=0)
