"""PostgreSQL advisory locks with keys from one `IntEnum` (never renumber a member).

`advisory_xact_lock(AdvisoryLock.MT5_ACCOUNT, login)` serializes work on one thing until the
surrounding transaction ends. On SQLite, whose write transactions are already serialized
(IMMEDIATE mode), it does nothing.
"""

from enum import IntEnum

from django.db import connection


class AdvisoryLock(IntEnum):
    # The two-int4 key space; the audit trail uses the single-bigint space, so no clash.
    MT5_ACCOUNT = 1  # money and leverage work on one MT5 login
    DEMO_POOL_REFILL = 2  # one refill of the demo pool at a time
    LICENSING_QUOTA = 3  # quota checks of one user (licensing.services.quotas)


def advisory_xact_lock(namespace: AdvisoryLock, key: int) -> None:
    """Wait for the lock on (namespace, key), held until this transaction commits or rolls back."""
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError("an advisory transaction lock needs an open transaction")
    with connection.cursor() as cursor:
        # Keys outside int4 fold onto it: a collision only serializes two unrelated keys.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [int(namespace), int(key) % 2_147_483_647]
        )


def advisory_xact_lock_many(namespace: AdvisoryLock, keys) -> None:
    """Take the locks on (namespace, key) for every key, in key order, in one round trip.

    Same lock space as `advisory_xact_lock`: a bulk job and a single request on the same
    key wait for each other. Sorted, so two bulk jobs never deadlock on each other.
    Each lock takes a slot of PostgreSQL's shared lock table (max_locks_per_transaction x
    max_connections): keep the batches in the low thousands.
    """
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError("an advisory transaction lock needs an open transaction")
    folded = sorted({int(key) % 2_147_483_647 for key in keys})
    if not folded:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, k)) FROM "
            "(SELECT unnest(%s::int[]) AS k ORDER BY 1) AS ordered",
            [int(namespace), folded],
        )
