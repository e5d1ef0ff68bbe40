"""Provisioning: the queue of accounts to create, worked through the demo gateway, and the
refill that keeps the pool (available + provisioning accounts) at its target.

Each account to create is a `ProvisioningRequest` whose `idempotency_id` goes to the server:
a retry after a timeout gets the account the first call made, never a second one. The queue
is worked by a few threads at once (`DEMO_POOL_PROVISION_THREADS`, each with its own
database connection): the calls are waits on the demo server, so a batch takes about as long
as its slowest account instead of the sum of them.
"""

import contextlib
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.services import audit_record
from core.locks import AdvisoryLock, advisory_xact_lock
from demo_pool.models import ActivationRequest, DemoAccount, PoolConfig, ProvisioningRequest
from gateways.demo import get_demo_gateway
from gateways.errors import PermanentGatewayError, TransientGatewayError

from .common import ENQUEUE_KEY, enqueue_task, logger, refill_lock

BACKOFF_MAX_SECONDS = 600
PROCESS_LIMIT = 100  # due requests one pass over the queue takes on


@dataclass(frozen=True)
class RefillResult:
    """What one refill run did; `ran` is False when another run held the lock.

    `below_target`: the run stopped for time while still making progress under the target,
    so a follow-up run should start at once.
    """

    ran: bool
    queued: int = 0
    batches: int = 0
    provisioned: int = 0
    retrying: int = 0
    failed: int = 0
    fulfilled: int = 0
    below_target: bool = False


def provisioning_enqueue(*, count: int, source: str = "refill", actor=None) -> int:
    """Queue up to `count` accounts to create, never past the pool's max; how many queued.

    The max caps the pool (provisioning + available accounts); assigned ones do not count.
    """
    if count <= 0:
        return 0
    config = PoolConfig.load()
    with transaction.atomic():
        advisory_xact_lock(AdvisoryLock.DEMO_POOL_REFILL, ENQUEUE_KEY)
        pool = DemoAccount.objects.filter(status__in=DemoAccount.POOL).count()
        count = max(0, min(count, config.max_pool_size - pool))
        now = timezone.now()
        accounts = DemoAccount.objects.bulk_create(
            DemoAccount(
                status=DemoAccount.Status.PROVISIONING,
                balance=config.initial_balance,
                leverage=config.leverage,
                currency=config.currency,
                created_at=now,
            )
            for _ in range(count)
        )
        ProvisioningRequest.objects.bulk_create(
            ProvisioningRequest(
                account=account,
                # Short enough for an MT5 comment field (31 characters): 22.
                idempotency_id="dp" + secrets.token_hex(10),
                source=source,
                created_at=now,
                next_attempt_at=now,
            )
            for account in accounts
        )
        if count and source != "refill":
            audit_record(
                action="demo_pool.replenished",
                object_type="demo_pool.poolconfig",
                object_id=config.pk,
                actor=actor,
                after={"queued": count, "source": source},
            )
    return count


def pool_replenish(*, count: int, actor=None) -> int:
    """Staff's "provision N now": queue them (within the max) and start the work; how many."""
    queued = provisioning_enqueue(count=count, source="replenish", actor=actor)
    if queued:
        with transaction.atomic():
            enqueue_task("provision")
    return queued


def _due(now) -> Q:
    return Q(status=ProvisioningRequest.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=ProvisioningRequest.Status.IN_PROGRESS,
        claimed_until__lte=now,  # a worker died holding it
    )


def _claim_due(now, count: int) -> list[ProvisioningRequest]:
    """Claim up to `count` due requests (with their accounts), oldest first, in one short
    transaction; each gets a lease and one more attempt."""
    lease_until = now + timedelta(seconds=settings.DEMO_POOL_PROVISION_LEASE_SECONDS)
    with transaction.atomic():
        requests = list(
            ProvisioningRequest.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("account")
            .filter(_due(now))
            .order_by("next_attempt_at", "pk")[:count]
        )
        if not requests:
            return []
        # Ours until the commit: locked rows (PostgreSQL), or one writer at a time (SQLite).
        ProvisioningRequest.objects.filter(pk__in=[request.pk for request in requests]).update(
            status=ProvisioningRequest.Status.IN_PROGRESS,
            claimed_until=lease_until,
            attempts=F("attempts") + 1,
        )
    for request in requests:
        request.status, request.claimed_until = ProvisioningRequest.Status.IN_PROGRESS, lease_until
        request.attempts += 1
    return requests


@contextlib.contextmanager
def _provisioners(threads: int) -> Iterator[Callable[[PoolConfig, int], Counter]]:
    """`work(config, limit)`: create up to `limit` due accounts, claiming up to `threads` at a
    time and creating them at once, one per thread. The threads start as work needs them and
    keep their database connections until the block ends: one each, not one per batch.
    """
    if threads <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        # In this connection, one at a time: SQLite serializes its writers anyway, and rows
        # queued in a transaction still open here are invisible to other connections.
        yield lambda config, limit: _work(config, limit, at_once=1, pool=None)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="demo-provision") as pool:
        used = False

        def work(config: PoolConfig, limit: int) -> Counter:
            nonlocal used
            used = True
            return _work(config, limit, at_once=threads, pool=pool)

        try:
            yield work
        finally:
            if used:
                # One task per thread (each waits for the others), each closing its connection.
                together = threading.Barrier(threads)

                def close() -> None:
                    try:
                        together.wait(timeout=60)
                    finally:
                        connection.close()

                for future in [pool.submit(close) for _ in range(threads)]:
                    future.exception()


def _work(config: PoolConfig, limit: int, *, at_once: int, pool) -> Counter:
    """Claim due requests `at_once` at a time and create their accounts (in `pool`'s threads,
    or here), until none is due or `limit` are done."""
    counts: Counter = Counter()
    gateway = get_demo_gateway()
    done = 0
    while done < limit:
        requests = _claim_due(timezone.now(), min(at_once, limit - done))
        if not requests:
            break
        done += len(requests)
        if pool is None or len(requests) == 1:
            outcomes = [_provision(request, gateway, config) for request in requests]
        else:
            outcomes = list(pool.map(lambda r: _provision(r, gateway, config), requests))
        counts.update(outcomes)
    return counts


def _process(work, config: PoolConfig, limit: int) -> dict[str, int]:
    """Work the due requests, then serve waiting activations; the counts."""
    done = work(config, limit)
    counts = {key: done[key] for key in ("provisioned", "retrying", "failed")}
    counts["fulfilled"] = 0
    if counts["provisioned"]:
        from .assignment import activation_requests_fulfil

        counts["fulfilled"] = activation_requests_fulfil()
    return counts


def provisioning_process(*, limit: int = 100, threads: int | None = None) -> dict[str, int]:
    """Create up to `limit` due accounts of the queue through the gateway, `threads` at a
    time (default `DEMO_POOL_PROVISION_THREADS`); then serve waiting activations. The counts.

    A transient error retries later with backoff (up to DEMO_POOL_PROVISION_MAX_ATTEMPTS); a
    permanent one (limit reached, bad parameters) fails the account with the reason.
    """
    threads = max(1, min(limit, threads or settings.DEMO_POOL_PROVISION_THREADS))
    with _provisioners(threads) as work:
        return _process(work, PoolConfig.load(), limit)


def _provision(request: ProvisioningRequest, gateway, config: PoolConfig) -> str:
    """Create one claimed request's account through the gateway: its outcome."""
    account = request.account
    try:
        answer = gateway.create_demo_account(
            idempotency_id=request.idempotency_id,
            name=f"Brokerdesk demo {account.row_key.hex[:12]}",
            balance=account.balance,
            leverage=account.leverage,
            currency=account.currency,
            group=config.group,
        )
    except TransientGatewayError as exc:
        return _retry_or_fail(request, exc)
    except PermanentGatewayError as exc:
        _fail(request, exc.code or "permanent", str(exc))
        return "failed"
    _succeed(request, answer, config)
    return "provisioned"


def _succeed(request: ProvisioningRequest, answer, config: PoolConfig) -> None:
    now = timezone.now()
    account = request.account  # still provisioning: only the request's holder writes it
    with transaction.atomic():
        account.login = answer.login
        account.server = answer.server or config.server_name
        account.password = answer.password
        account.balance = answer.balance
        account.leverage = answer.leverage
        account.currency = answer.currency
        account.status = DemoAccount.Status.AVAILABLE
        account.available_at = now
        account.expires_at = now + timedelta(days=config.account_expiry_days)
        account.save(
            update_fields=[
                "login", "server", "password", "balance", "leverage", "currency",
                "status", "available_at", "expires_at",
            ]
        )  # fmt: skip
        ProvisioningRequest.objects.filter(pk=request.pk).update(
            status=ProvisioningRequest.Status.DONE,
            finished_at=now,
            claimed_until=None,
            last_error="",
            latency_ms=min(
                2**31 - 1, max(0, int((now - request.created_at).total_seconds() * 1000))
            ),
        )
    logger.info("demo account %s provisioned (request %s)", answer.login, request.pk)


def _retry_or_fail(request: ProvisioningRequest, exc: Exception) -> str:
    if request.attempts >= settings.DEMO_POOL_PROVISION_MAX_ATTEMPTS:
        _fail(request, "retries_exhausted", f"{type(exc).__name__}: {exc}")
        return "failed"
    base = settings.DEMO_POOL_PROVISION_BACKOFF_SECONDS * 2 ** (request.attempts - 1)
    delay = min(BACKOFF_MAX_SECONDS, base) * random.uniform(0.5, 1.0)  # jitter
    ProvisioningRequest.objects.filter(
        pk=request.pk, status=ProvisioningRequest.Status.IN_PROGRESS
    ).update(
        status=ProvisioningRequest.Status.PENDING,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        claimed_until=None,
        last_error=f"{type(exc).__name__}: {exc}"[:500],
    )
    logger.warning("demo provisioning %s: transient error, retry in %.0f s", request.pk, delay)
    return "retrying"


def _fail(request: ProvisioningRequest, code: str, message: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        ProvisioningRequest.objects.filter(pk=request.pk).update(
            status=ProvisioningRequest.Status.FAILED,
            finished_at=now,
            claimed_until=None,
            error_code=code[:32],
            last_error=message[:500],
        )
        DemoAccount.objects.filter(
            pk=request.account_id, status=DemoAccount.Status.PROVISIONING
        ).update(status=DemoAccount.Status.FAILED, reason=f"{code}: {message}"[:300], ended_at=now)
    logger.error("demo provisioning %s failed: %s %s", request.pk, code, message)


def pool_refill() -> RefillResult:
    """One refill run (one at a time): while the pool is under its target, queue a batch and
    provision it concurrently, batch after batch; waiting activations get the new accounts.

    It aims at the target plus the waiting activations, counting accounts already being
    provisioned, never past the max. It stops at the target, when a batch provisions nothing
    (the server refuses or is down: beat tries again), or after DEMO_POOL_REFILL_RUN_SECONDS;
    stopped for time while still under the target, it asks for a follow-up (`below_target`).
    """
    with refill_lock() as got:
        if not got:
            return RefillResult(ran=False)
        config = PoolConfig.load()
        threads = min(config.provision_batch_size, settings.DEMO_POOL_PROVISION_THREADS)
        deadline = time.monotonic() + settings.DEMO_POOL_REFILL_RUN_SECONDS
        totals: Counter = Counter()
        batches = 0
        out_of_time = False
        with _provisioners(threads) as work:
            while True:
                shortfall = _shortfall(config)
                queued = provisioning_enqueue(count=min(shortfall, config.provision_batch_size))
                # Also retries that came due and accounts staff asked for.
                done = _process(work, config, PROCESS_LIMIT)
                batches += bool(queued)
                totals.update(queued=queued, **done)
                if not done["provisioned"]:
                    break
                if time.monotonic() >= deadline:
                    out_of_time = True
                    break
        below = out_of_time and _shortfall(config) > 0
    return RefillResult(
        ran=True,
        queued=totals["queued"],
        batches=batches,
        provisioned=totals["provisioned"],
        retrying=totals["retrying"],
        failed=totals["failed"],
        fulfilled=totals["fulfilled"],
        below_target=below,
    )


def _shortfall(config: PoolConfig) -> int:
    """How many accounts the pool lacks: target + waiting activations - (available + in flight)."""
    waiting = ActivationRequest.objects.filter(status=ActivationRequest.Status.QUEUED).count()
    pool = DemoAccount.objects.filter(status__in=DemoAccount.POOL).count()
    return config.target_buffer + waiting - pool
