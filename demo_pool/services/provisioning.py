"""Provisioning: the queue of accounts to create, worked through the demo gateway, and the
refill that keeps the pool between its minimum and its target.

Each account to create is a `ProvisioningRequest` whose `idempotency_id` goes to the server:
a retry after a timeout gets the account the first call made, never a second one.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.locks import AdvisoryLock, advisory_xact_lock
from accounts.services import audit_record
from demo_pool.models import ActivationRequest, DemoAccount, PoolConfig, ProvisioningRequest
from gateways.demo import get_demo_gateway
from gateways.errors import PermanentGatewayError, TransientGatewayError

from .common import ENQUEUE_KEY, enqueue_task, logger, refill_lock, status_counts

Status = DemoAccount.Status
ReqStatus = ProvisioningRequest.Status
BACKOFF_MAX_SECONDS = 600


@dataclass(frozen=True)
class RefillResult:
    """What one refill run did; `ran` is False when another run held the lock."""

    ran: bool
    queued: int = 0
    provisioned: int = 0
    retrying: int = 0
    failed: int = 0
    fulfilled: int = 0
    below_target: bool = False


def provisioning_enqueue(*, count: int, source: str = "refill", actor=None) -> int:
    """Queue up to `count` accounts to create, never past the pool's max; how many queued."""
    if count <= 0:
        return 0
    config = PoolConfig.load()
    with transaction.atomic():
        advisory_xact_lock(AdvisoryLock.DEMO_POOL_REFILL, ENQUEUE_KEY)
        live = DemoAccount.objects.filter(status__in=DemoAccount.LIVE).count()
        count = max(0, min(count, config.max_pool_size - live))
        now = timezone.now()
        for _ in range(count):
            account = DemoAccount.objects.create(
                status=Status.PROVISIONING,
                balance=config.initial_balance,
                leverage=config.leverage,
                currency=config.currency,
                created_at=now,
            )
            ProvisioningRequest.objects.create(
                account=account,
                idempotency_id=uuid.uuid4().hex,
                source=source,
                created_at=now,
                next_attempt_at=now,
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


def _claim_next(now) -> ProvisioningRequest | None:
    due = Q(status=ReqStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=ReqStatus.IN_PROGRESS,
        claimed_until__lte=now,  # a worker died holding it
    )
    lease = timedelta(seconds=settings.DEMO_POOL_PROVISION_LEASE_SECONDS)
    with transaction.atomic():
        request = (
            ProvisioningRequest.objects.select_for_update(skip_locked=True)
            .filter(due)
            .order_by("next_attempt_at", "pk")
            .first()
        )
        if request is None:
            return None
        claimed = ProvisioningRequest.objects.filter(
            pk=request.pk, status=request.status, attempts=request.attempts
        ).update(
            status=ReqStatus.IN_PROGRESS, claimed_until=now + lease, attempts=request.attempts + 1
        )
        if not claimed:
            return _claim_next(now)
    request.refresh_from_db()
    return request


def provisioning_process(*, limit: int = 100) -> dict[str, int]:
    """Create the due accounts of the queue through the gateway, one by one; the counts.

    A transient error retries later with backoff (up to DEMO_POOL_PROVISION_MAX_ATTEMPTS); a
    permanent one (limit reached, bad parameters) fails the account with the reason.
    """
    counts = {"provisioned": 0, "retrying": 0, "failed": 0, "fulfilled": 0}
    config = PoolConfig.load()
    gateway = get_demo_gateway()
    for _ in range(limit):
        request = _claim_next(timezone.now())
        if request is None:
            break
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
            counts[_retry_or_fail(request, exc)] += 1
            continue
        except PermanentGatewayError as exc:
            _fail(request, exc.code or "permanent", str(exc))
            counts["failed"] += 1
            continue
        _succeed(request, answer, config)
        counts["provisioned"] += 1
    if counts["provisioned"]:
        from .assignment import activation_requests_fulfil

        counts["fulfilled"] = activation_requests_fulfil()
    return counts


def _succeed(request: ProvisioningRequest, answer, config: PoolConfig) -> None:
    now = timezone.now()
    with transaction.atomic():
        account = DemoAccount.objects.select_for_update().get(pk=request.account_id)
        account.login = answer.login
        account.server = answer.server or config.server_name
        account.password = answer.password
        account.balance = answer.balance
        account.leverage = answer.leverage
        account.currency = answer.currency
        account.status = Status.AVAILABLE
        account.available_at = now
        account.expires_at = now + timedelta(days=config.account_expiry_days)
        account.save(
            update_fields=[
                "login", "server", "password", "balance", "leverage", "currency",
                "status", "available_at", "expires_at",
            ]
        )  # fmt: skip
        ProvisioningRequest.objects.filter(pk=request.pk).update(
            status=ReqStatus.DONE,
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
    ProvisioningRequest.objects.filter(pk=request.pk, status=ReqStatus.IN_PROGRESS).update(
        status=ReqStatus.PENDING,
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
            status=ReqStatus.FAILED,
            finished_at=now,
            claimed_until=None,
            error_code=code[:32],
            last_error=message[:500],
        )
        DemoAccount.objects.filter(pk=request.account_id, status=Status.PROVISIONING).update(
            status=Status.FAILED, reason=f"{code}: {message}"[:300], ended_at=now
        )
    logger.error("demo provisioning %s failed: %s %s", request.pk, code, message)


def pool_refill(*, topping_up: bool = False) -> RefillResult:
    """One refill run (one at a time): queue at most one batch, then work the queue.

    It starts when available + in-flight accounts fall under the minimum, or requests wait
    (or `topping_up`, a follow-up run), and aims at the target plus the waiting requests,
    never past the max.
    """
    with refill_lock() as got:
        if not got:
            return RefillResult(ran=False)
        config = PoolConfig.load()
        counts = status_counts()
        waiting = ActivationRequest.objects.filter(status=ActivationRequest.Status.QUEUED).count()
        ready = counts[Status.AVAILABLE] + counts[Status.PROVISIONING]
        queued = 0
        if topping_up or waiting or ready < config.min_available:
            want = config.target_buffer + waiting - ready
            queued = provisioning_enqueue(count=min(want, config.provision_batch_size))
        done = provisioning_process()
        counts = status_counts()
        live = sum(counts[s] for s in DemoAccount.LIVE)
        ready = counts[Status.AVAILABLE] + counts[Status.PROVISIONING]
        waiting = ActivationRequest.objects.filter(status=ActivationRequest.Status.QUEUED).count()
        below = ready < config.target_buffer + waiting and live < config.max_pool_size
    return RefillResult(
        ran=True,
        queued=queued,
        provisioned=done["provisioned"],
        retrying=done["retrying"],
        failed=done["failed"],
        fulfilled=done["fulfilled"],
        below_target=below and queued > 0,
    )
