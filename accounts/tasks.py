import logging

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from accounts.health import HEARTBEAT_CACHE_KEY
from accounts.services.events import account_events_dispatch
from accounts.services.monitor import (
    SweepResult,
    monitor_batch,
    monitor_batch_finished,
    monitor_discover,
    monitor_sweep_schedule,
)
from gateways.errors import TransientGatewayError

logger = logging.getLogger(__name__)


@shared_task(name="accounts.heartbeat")
def heartbeat() -> str:
    """Beat -> broker -> worker works: say so in the log and leave the time in the cache."""
    now = timezone.now().isoformat()
    cache.set(HEARTBEAT_CACHE_KEY, now, timeout=None)
    logger.info("heartbeat", extra={"at": now})
    return now


@shared_task(name="accounts.monitor_sweep")
def monitor_sweep_task() -> str:
    """Beat's sweep of every monitored account (fanned out in batches)."""
    try:
        return monitor_sweep_schedule()
    except Exception:  # a sweep never raises out of its task: the next one runs in a second
        logger.exception("monitor sweep failed")
        return "failed"


@shared_task(name="accounts.monitor_batch")
def monitor_batch_task(*, first: int, last: int, sweep_id: str = "", failures: int = 0) -> dict:
    """One batch of a fanned-out sweep (`failures`: its failed tries in a row before this)."""
    try:
        result = monitor_batch(first=first, last=last)
    except Exception:
        logger.exception("monitor batch %s-%s failed", first, last)
        result = SweepResult(batches=1, errors=1)
    if sweep_id:
        monitor_batch_finished(sweep_id=sweep_id, result=result, first=first, failures=failures)
    return result.as_dict()


@shared_task(name="accounts.monitor_discover")
def monitor_discover_task() -> int:
    """Register the server's new logins for monitoring."""
    try:
        return monitor_discover()
    except TransientGatewayError as exc:  # a fault of the server: the next run tries again
        logger.info("monitor discovery skipped: MT5 unavailable (%s)", exc)
        return 0
    except Exception:
        logger.exception("monitor discovery failed")
        return 0


@shared_task(name="accounts.dispatch_events")
def dispatch_events_task() -> int:
    """Retry the account events whose backoff has passed."""
    return account_events_dispatch().handled
