"""The cached snapshot of a key's license: what validation needs, without the database.

Stored under `licensing:lic:<digest>` for LICENSE_VALIDATION_CACHE_SECONDS, a miss included
(`{"id": null}`: NOT_FOUND), and dropped by every admin change. With Redis (REDIS_URL) it is
compact JSON under that raw key, so the validation script reads it in the same round trip as
the rate limits; without Redis it lives in the Django cache (process memory). A Redis that
does not answer is a cache miss for reads (the database answers), never a failed validation.
"""

import json
import logging

import redis
from django.conf import settings
from django.core.cache import cache

from .redis_client import activity_redis

logger = logging.getLogger(__name__)
PREFIX = "licensing:lic:"
MISSING = {"id": None}
_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)
_warned = False


def snapshot_key(digest: str) -> str:
    """The raw Redis key (and Django cache key) of a key digest's snapshot."""
    return PREFIX + digest


def snapshot_encode(snapshot: dict) -> str:
    return json.dumps(snapshot, separators=(",", ":"))


def snapshot_decode(raw: bytes | str) -> dict:
    return json.loads(raw)


def _warn_once(exc: Exception) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning(
            "license snapshots: Redis did not answer, reading the database",
            extra={"error": str(exc)},
        )


def snapshot_read(digest: str) -> dict | None:
    """The cached snapshot (`MISSING` for a cached NOT_FOUND), or None when not cached."""
    client = activity_redis()
    if client is None:
        return cache.get(snapshot_key(digest))
    try:
        raw = client.get(snapshot_key(digest))
    except _ERRORS as exc:
        _warn_once(exc)
        return None
    return None if raw is None else snapshot_decode(raw)


def snapshot_write(digest: str, snapshot: dict) -> None:
    timeout = settings.LICENSE_VALIDATION_CACHE_SECONDS
    client = activity_redis()
    if client is None:
        cache.set(snapshot_key(digest), snapshot, timeout=timeout)
        return
    try:
        client.set(snapshot_key(digest), snapshot_encode(snapshot), ex=timeout)
    except _ERRORS as exc:
        _warn_once(exc)


def snapshot_drop(digest: str) -> None:
    """Forget a snapshot. Raises when Redis does not answer: an admin change that could not
    drop it must not look done while validations elsewhere may still read the old one."""
    client = activity_redis()
    if client is None:
        cache.delete(snapshot_key(digest))
    else:
        client.delete(snapshot_key(digest))
