"""Per-address rate limits of the reveal endpoints, counted in the cache (Redis when
REDIS_URL is set, so every web process shares the counts; per process otherwise).

A fixed window per address: the first request of a window creates the counter, each request
increments it atomically (`cache.incr`), over the limit is a 429 with `Retry-After` until the
window ends.
"""

import math
import re
import time

from django.conf import settings
from django.core.cache import cache

from core.errors import RateLimitedError

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SCOPES = {"reveal": "DELIVERY_REVEAL_RATE_LIMIT", "view": "DELIVERY_VIEW_RATE_LIMIT"}


def parse_rate(rate: str) -> tuple[int, int]:
    """'10/min' -> (10, 60); '100/5m' -> (100, 300)."""
    match = _RATE.match(rate or "")
    if match is None:
        raise ValueError(f"bad rate {rate!r}: expected like '10/min' or '100/5m'")
    count, multiplier, unit = match.groups()
    return int(count), int(multiplier or 1) * _PERIODS[unit[0]]


def rate_limit_hit(*, scope: str, ip: str | None) -> None:
    """Count one request of `ip` on `scope` ("reveal" or "view"); over the limit: 429."""
    limit, period = parse_rate(getattr(settings, SCOPES[scope]))
    now = time.time()
    window = int(now // period)
    key = f"delivery:rate:{scope}:{ip or 'unknown'}:{period}:{window}"
    cache.add(key, 0, timeout=period + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=period + 5)
        count = 1
    if count > limit:
        retry_after = max(1, math.ceil((window + 1) * period - now))
        raise RateLimitedError(
            "Too many requests to one-time links from this address; try again later.",
            retry_after=retry_after,
        )
