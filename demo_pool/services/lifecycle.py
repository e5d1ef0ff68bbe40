"""Health checks, expiry and cleanup: bounded sweeps, gateway calls outside transactions,
each account in its own try/except, counts out."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.services import audit_record
from demo_pool.models import DemoAccount, HealthLog, PoolConfig, PressPass
from gateways.demo import get_demo_gateway
from gateways.errors import GatewayError, PermanentGatewayError

from .common import logger
from .provisioning import provisioning_enqueue, provisioning_process

GATEWAY_ERROR = "gateway: "  # a check that got no answer: it says nothing about the account


def account_health_check(*, account: DemoAccount) -> HealthLog:
    """Ask the server about one account and log the answer (or the error)."""
    now = timezone.now()
    try:
        assert account.login is not None  # only a provisioned account is checked
        answer = get_demo_gateway().check_account(account.login)
    except GatewayError as exc:
        log = HealthLog.objects.create(
            account=account,
            checked_at=now,
            healthy=False,
            error=f"{GATEWAY_ERROR}{type(exc).__name__}: {exc}"[:300],
        )
        DemoAccount.objects.filter(pk=account.pk).update(last_health_at=now)
        return log
    healthy = answer.exists and answer.enabled
    log = HealthLog.objects.create(
        account=account,
        checked_at=now,
        healthy=healthy,
        exists=answer.exists,
        enabled=answer.enabled,
        connected=answer.connected,
        balance=answer.balance if answer.exists else None,
        equity=answer.equity if answer.exists else None,
        error="" if healthy else ("unknown on the server" if not answer.exists else "disabled"),
    )
    if healthy:
        DemoAccount.objects.filter(pk=account.pk).update(last_health_at=now, health_failures=0)
    else:
        DemoAccount.objects.filter(pk=account.pk).update(
            last_health_at=now, health_failures=F("health_failures") + 1
        )
    return log


@dataclass(frozen=True)
class HealthReport:
    """What a live check tells about an account: the last check the server answered (this
    one, or an earlier one when the server did not answer now; None if it never has), and
    why this check got no answer ("" when it did)."""

    last_answered: HealthLog | None
    live_error: str


def account_health_report(*, account: DemoAccount) -> HealthReport:
    """A live check, logged; a server that does not answer says nothing about the account."""
    live = account_health_check(account=account)
    if not live.error.startswith(GATEWAY_ERROR):
        return HealthReport(live, "")
    answered = account.health_logs.exclude(error__startswith=GATEWAY_ERROR).first()
    return HealthReport(answered, live.error)


def account_retire(*, account: DemoAccount, reason: str, actor=None) -> bool:
    """Take an unused account out of the pool (available only); whether it was retired."""
    now = timezone.now()
    with transaction.atomic():
        retired = DemoAccount.objects.filter(
            pk=account.pk, status=DemoAccount.Status.AVAILABLE
        ).update(status=DemoAccount.Status.RETIRED, reason=reason[:300], ended_at=now)
        if retired:
            audit_record(
                action="demo_pool.account_retired",
                obj=account,
                actor=actor,
                before={"status": DemoAccount.Status.AVAILABLE},
                after={"status": DemoAccount.Status.RETIRED, "reason": reason},
            )
    return bool(retired)


def pool_health_check(*, batch_size: int | None = None) -> dict[str, int]:
    """Check the stalest available and assigned accounts not checked within the interval.

    An available account failing DEMO_POOL_HEALTH_MAX_FAILURES checks in a row is retired and
    replaced; an assigned one that fails is flagged for staff. A gateway outage (the check
    itself erred) counts against nobody.
    """
    config = PoolConfig.load()
    now = timezone.now()
    stale_before = now - timedelta(minutes=config.health_check_interval_minutes)
    batch = list(
        DemoAccount.objects.filter(
            status__in=(DemoAccount.Status.AVAILABLE, DemoAccount.Status.ASSIGNED)
        )
        .filter(Q(last_health_at__isnull=True) | Q(last_health_at__lte=stale_before))
        .order_by(F("last_health_at").asc(nulls_first=True), "pk")[
            : batch_size or settings.DEMO_POOL_HEALTH_BATCH_SIZE
        ]
    )
    counts = {"checked": 0, "healthy": 0, "failed": 0, "retired": 0, "flagged": 0, "errors": 0}
    for account in batch:
        try:
            log = account_health_check(account=account)
        except Exception:
            logger.exception("demo account %s: health check crashed", account.login)
            counts["errors"] += 1
            continue
        counts["checked"] += 1
        if log.healthy:
            counts["healthy"] += 1
            continue
        if log.error.startswith(GATEWAY_ERROR):
            counts["errors"] += 1
            continue
        counts["failed"] += 1
        account.refresh_from_db(fields=["status", "health_failures"])
        if (
            account.status == DemoAccount.Status.AVAILABLE
            and account.health_failures >= settings.DEMO_POOL_HEALTH_MAX_FAILURES
        ):
            if account_retire(account=account, reason=f"health check: {log.error}"):
                counts["retired"] += 1
        elif account.status == DemoAccount.Status.ASSIGNED and not account.needs_attention:
            DemoAccount.objects.filter(pk=account.pk).update(needs_attention=True)
            audit_record(
                action="demo_pool.account_flagged",
                obj=account,
                after={"needs_attention": True, "error": log.error},
            )
            counts["flagged"] += 1
    if counts["retired"]:
        provisioning_enqueue(count=counts["retired"], source="replacement")
        provisioning_process()
    return counts


def _disable(login: int | None) -> None:
    if login is None:
        return
    try:
        get_demo_gateway().disable_account(login)
    except PermanentGatewayError as exc:
        if exc.code != "account_not_found":  # already gone from the server: nothing to do
            raise


def press_passes_expire_due(*, batch_size: int | None = None) -> dict[str, int]:
    """Press passes past their expiry: disabled on the server, then marked expired.

    Unused available accounts past their own expiry are retired. Nothing is touched before
    its expiry.
    """
    now = timezone.now()
    counts = {"expired": 0, "retired": 0, "errors": 0}
    due = list(
        PressPass.objects.select_related("account")
        .filter(status=PressPass.Status.ACTIVE, expires_at__lte=now)
        .order_by("expires_at", "pk")[: batch_size or settings.DEMO_POOL_EXPIRY_BATCH_SIZE]
    )
    for press_pass in due:
        account = press_pass.account
        try:
            _disable(account.login)
        except GatewayError as exc:
            logger.warning(
                "press pass %s: disable failed, next run retries: %s", press_pass.pk, exc
            )
            counts["errors"] += 1
            continue
        with transaction.atomic():
            expired = PressPass.objects.filter(
                pk=press_pass.pk, status=PressPass.Status.ACTIVE
            ).update(status=PressPass.Status.EXPIRED, expired_at=now)
            if not expired:
                continue
            DemoAccount.objects.filter(pk=account.pk, status=DemoAccount.Status.ASSIGNED).update(
                status=DemoAccount.Status.EXPIRED, ended_at=now, reason="press pass expired"
            )
            audit_record(
                action="demo_pool.press_pass_expired",
                obj=press_pass,
                before={"status": PressPass.Status.ACTIVE},
                after={"status": PressPass.Status.EXPIRED, "login": account.login},
            )
        counts["expired"] += 1
    unused = DemoAccount.objects.filter(
        status=DemoAccount.Status.AVAILABLE, expires_at__lte=now
    ).order_by("pk")
    for account in unused[: batch_size or settings.DEMO_POOL_EXPIRY_BATCH_SIZE]:
        if account_retire(account=account, reason="unused past its expiry"):
            counts["retired"] += 1
    return counts


def pool_cleanup(*, force: bool = False, batch_size: int = 500) -> dict[str, int]:
    """Failed, retired and expired accounts: disabled on the server, password wiped; old health
    logs deleted. Runs at most once per the configured interval unless `force`."""
    config = PoolConfig.load()
    now = timezone.now()
    due_at = now - timedelta(hours=config.cleanup_interval_hours)
    if not force and config.last_cleanup_at and config.last_cleanup_at > due_at:
        return {"skipped": 1}
    PoolConfig.objects.filter(pk=config.pk).update(last_cleanup_at=now)
    counts = {"cleaned": 0, "errors": 0, "logs_deleted": 0}
    ended = DemoAccount.objects.filter(
        status__in=(
            DemoAccount.Status.FAILED,
            DemoAccount.Status.RETIRED,
            DemoAccount.Status.EXPIRED,
        ),
        cleaned_at__isnull=True,
    ).order_by("pk")[:batch_size]
    for account in ended:
        try:
            _disable(account.login)
        except GatewayError as exc:
            logger.warning("demo account %s: cleanup disable failed: %s", account.login, exc)
            counts["errors"] += 1
            continue
        account.password = None
        account.cleaned_at = now
        account.save(update_fields=["password", "cleaned_at"])
        counts["cleaned"] += 1
    cutoff = now - timedelta(days=settings.DEMO_POOL_HEALTH_LOG_DAYS)
    counts["logs_deleted"], _ = HealthLog.objects.filter(checked_at__lt=cutoff).delete()
    return counts
