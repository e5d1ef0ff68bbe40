"""Reads of the accounts app that are more than a queryset: the monitor's state for operators."""

from typing import Any

from django.core.cache import cache
from django.db.models import Count, QuerySet
from django.utils.dateparse import parse_datetime

from accounts.models import MonitoredAccount
from accounts.services.events import account_events_pending
from accounts.services.monitor import STATUS_CACHE_KEY, SWEEPS_CACHE_KEY, server_name


def monitored_accounts() -> QuerySet[MonitoredAccount]:
    """The accounts the monitor watches on this installation's MT5 server, by login."""
    return MonitoredAccount.objects.filter(server=server_name()).order_by("login")


def monitor_status() -> dict[str, Any]:
    """Accounts by status (one GROUP BY), open events, and the last sweep as `sweep_record`
    left it in the cache (nothing there yet: no sweep has run since the cache was emptied)."""
    by_status = dict(
        MonitoredAccount.objects.filter(server=server_name())
        .order_by()
        .values_list("status")
        .annotate(count=Count("id"))
        .values_list("status", "count")
    )
    last = cache.get(STATUS_CACHE_KEY) or {}
    at = last.get("at")
    return {
        "accounts_total": sum(by_status.values()),
        "active": by_status.get(MonitoredAccount.Status.ACTIVE, 0),
        "paused": by_status.get(MonitoredAccount.Status.PAUSED, 0),
        "last_sweep_at": parse_datetime(at) if isinstance(at, str) else at,
        "last_sweep_ms": last.get("ms"),
        "sweeps_total": int(cache.get(SWEEPS_CACHE_KEY) or 0),
        "events_pending": account_events_pending(),
    }
