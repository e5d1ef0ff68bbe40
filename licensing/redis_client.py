"""Raw Redis clients (short timeouts) for the rate limiter and the activity buffers.

`None` when no URL is configured: callers fall back to process memory or the cache.
"""

from functools import lru_cache

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

TIMEOUT_SECONDS = 0.25


@lru_cache(maxsize=8)
def redis_for(url: str) -> redis.Redis | None:
    if not url:
        return None
    return redis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def activity_redis() -> redis.Redis | None:
    """The Redis holding last-active times and the usage-log queue (REDIS_URL)."""
    return redis_for(settings.REDIS_URL)


@receiver(setting_changed)
def _forget(*, setting, **kwargs):
    if setting in ("REDIS_URL", "LICENSE_RATE_LIMIT_REDIS_URL"):
        redis_for.cache_clear()
