"""Backing off: one batch after a fault of its own, the whole scheduled sweep while every
batch fails (the gateway is down); jittered and capped, ended by the first answer."""

import random
import time

from django.conf import settings
from django.core.cache import cache

from .results import logger

OUTAGE_CACHE_KEY = "monitor:outage"


BATCH_BACKOFF_KEY = "monitor:batch_backoff:{first}"


def _backoff_seconds(failures: int, cap: float) -> float:
    """After `failures` in a row: a sweep period doubled each time, capped, jittered down to
    half (so batches that failed together do not come back together)."""
    delay = min(settings.MONITOR_SWEEP_SECONDS * 2 ** (failures - 1), cap)
    return delay * random.uniform(0.5, 1.0)


def _batch_failures(ranges: list[tuple[int, int]]) -> dict[int, tuple[int, float]]:
    """The batches that failed lately: first login -> (failures in a row, not before);
    one cache round trip."""
    if not ranges:
        return {}
    keys = {BATCH_BACKOFF_KEY.format(first=first): first for first, _ in ranges}
    found = cache.get_many(list(keys))
    return {keys[key]: (value["count"], value["until"]) for key, value in found.items()}


def _batch_note(first: int, *, before: int, failed: bool) -> None:
    """Back one batch off after a fault of its own (`MONITOR_BATCH_BACKOFF_MAX_SECONDS` at
    most); an answer ends its backoff. The record expires a minute after it."""
    key = BATCH_BACKOFF_KEY.format(first=first)
    if not failed:
        if before:
            cache.delete(key)
        return
    count = before + 1
    delay = _backoff_seconds(count, settings.MONITOR_BATCH_BACKOFF_MAX_SECONDS)
    cache.set(key, {"count": count, "until": time.time() + delay}, timeout=int(delay) + 60)


def outage_note(*, failed: bool) -> None:
    """The scheduled sweep's backoff while every batch fails (the gateway is down), capped at
    `MONITOR_OUTAGE_MAX_SECONDS` and jittered; an answer ends it."""
    if not failed:
        cache.delete(OUTAGE_CACHE_KEY)
        return
    previous = cache.get(OUTAGE_CACHE_KEY) or {"count": 0}
    count = previous["count"] + 1
    delay = _backoff_seconds(count, settings.MONITOR_OUTAGE_MAX_SECONDS)
    cache.set(OUTAGE_CACHE_KEY, {"count": count, "until": time.time() + delay}, timeout=None)
    if count == 1:
        logger.warning(
            "monitor: every batch failed, the MT5 gateway looks down; the sweep probes one "
            "batch at a time, at most %ss apart",
            settings.MONITOR_OUTAGE_MAX_SECONDS,
        )
