"""What the demo pool's services share: the refill lock, counts, and queueing tasks."""

import contextlib
import logging
from collections.abc import Iterator

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count

from accounts.locks import AdvisoryLock
from demo_pool.models import DemoAccount

logger = logging.getLogger("demo_pool")

REFILL_RUN_KEY = 0  # (DEMO_POOL_REFILL, 0): one refill run at a time, held across gateway calls
ENQUEUE_KEY = 1  # (DEMO_POOL_REFILL, 1): counting and queueing accounts, in one transaction
_CACHE_LOCK = "demo_pool:refill-lock"
_CACHE_LOCK_SECONDS = 600


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
