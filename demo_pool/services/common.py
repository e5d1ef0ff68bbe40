"""What the demo pool's services share: the refill lock, counts, and queueing tasks."""

import contextlib
import logging
import time
from collections.abc import Iterator

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count

from core.locks import AdvisoryLock
from demo_pool.models import DemoAccount, PoolConfig

logger = logging.getLogger("demo_pool")

REFILL_RUN_KEY = 0  # (DEMO_POOL_REFILL, 0): one refill run at a time, held across gateway calls
ENQUEUE_KEY = 1  # (DEMO_POOL_REFILL, 1): counting and queueing accounts, in one transaction
_CACHE_LOCK = "demo_pool:refill-lock"
_CACHE_LOCK_SECONDS = 600


_config: tuple[float, PoolConfig] | None = None


def pool_config_cached() -> PoolConfig:
    """The configuration row for the activation path: read at most once per
    DEMO_POOL_CONFIG_CACHE_SECONDS per process, so staff's edits reach every process within
    that; a save in this process is seen at once (`pool_config_forget`). Read-only."""
    global _config
    cached, now = _config, time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    config = PoolConfig.load()
    _config = (now + settings.DEMO_POOL_CONFIG_CACHE_SECONDS, config)
    return config


def pool_config_forget(**_signal) -> None:
    """Drop this process's cached configuration (on every save of the row)."""
    global _config
    _config = None


@contextlib.contextmanager
def refill_lock() -> Iterator[bool]:
    """Try to take the refill lock; yields whether this process got it (never waits).

    PostgreSQL: a session-level advisory lock, so it is held across the gateway calls made
    outside any transaction, and released by the server if the process dies. Elsewhere
    (SQLite, one machine): a cache key.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, %s)",
                [int(AdvisoryLock.DEMO_POOL_REFILL), REFILL_RUN_KEY],
            )
            got = bool(cursor.fetchone()[0])
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s, %s)",
                        [int(AdvisoryLock.DEMO_POOL_REFILL), REFILL_RUN_KEY],
                    )
        return
    got = cache.add(_CACHE_LOCK, 1, timeout=_CACHE_LOCK_SECONDS)
    try:
        yield got
    finally:
        if got:
            cache.delete(_CACHE_LOCK)


def status_counts() -> dict[str, int]:
    """Accounts per status, every status present (0 when none)."""
    counts = dict.fromkeys(DemoAccount.Status.values, 0)
    rows = DemoAccount.objects.order_by().values("status").annotate(n=Count("id"))
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


_nudged_at = float("-inf")


def refill_nudge() -> None:
    """Queue a refill run once the current transaction commits, at most once per
    DEMO_POOL_REFILL_NUDGE_SECONDS in this process: under a steady load every assignment
    leaves the pool under its target, and one run tops up for all of them."""
    global _nudged_at
    now = time.monotonic()
    if now - _nudged_at < settings.DEMO_POOL_REFILL_NUDGE_SECONDS:
        return
    _nudged_at = now
    enqueue_task("refill")


def refill_nudge_forget() -> None:
    """Let the next nudge through (tests)."""
    global _nudged_at
    _nudged_at = float("-inf")


def enqueue_task(name: str, **kwargs) -> None:
    """Queue a demo_pool task once the current transaction commits (never raises)."""

    def send():
        from demo_pool import tasks

        try:
            getattr(tasks, name).apply_async(kwargs=kwargs)
        except Exception:
            # Beat runs the same work every minute: a lost nudge only delays it.
            logger.exception("demo_pool: could not queue %s", name)

    transaction.on_commit(send)
