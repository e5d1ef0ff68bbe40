from celery import shared_task
from django.utils import timezone

from .services import (
    licenses_expire_due,
    quota_holds_purge,
    subscriptions_expire_due,
    usage_flush,
    usage_purge,
)


@shared_task(name="licensing.flush_activity")
def flush_activity() -> dict:
    """Write the queued API calls in bulk and advance licenses' last_active_at."""
    return usage_flush()


@shared_task(name="licensing.expire_due")
def expire_due() -> int:
    """Mark ACTIVE licenses past their expiry EXPIRED; return how many."""
    return licenses_expire_due()


@shared_task(name="licensing.expire_subscriptions")
def expire_subscriptions() -> int:
    """End active subscriptions past their end (what ran under them stops); return how many."""
    return subscriptions_expire_due()


@shared_task(name="licensing.purge_usage")
def purge_usage() -> dict:
    """Drop API calls past the retention, and per-day quota holds of past days."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return {"calls": usage_purge(), "holds": quota_holds_purge(before=midnight)}
