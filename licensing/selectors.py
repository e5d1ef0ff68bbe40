"""Reads for the admin API, the admin screens and /metrics."""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import ApiUsageLog, License, ReportedTrade
from .services.trades import trade_stats


def licensing_stats() -> dict:
    """{users_total, active, expired, suspended, by_license_type, api_calls_24h, trades_total,
    pnl_total}; expired counts expiry by time, whatever the stored status says."""
    now = timezone.now()
    expired_q = Q(expires_at__lte=now) & ~Q(status=License.Status.SUSPENDED)
    row = License.objects.aggregate(
        users_total=Count("id"),
        suspended=Count("id", filter=Q(status=License.Status.SUSPENDED)),
        expired=Count("id", filter=expired_q),
    )
    by_type = dict(License.objects.values_list("license_type").annotate(n=Count("id")).order_by())
    trades = ReportedTrade.objects.aggregate(n=Count("id"), pnl=Sum("pnl"))
    return {
        "users_total": row["users_total"],
        "active": row["users_total"] - row["suspended"] - row["expired"],
        "expired": row["expired"],
        "suspended": row["suspended"],
        "by_license_type": {t: by_type.get(t, 0) for t in License.Type.values},
        "api_calls_24h": ApiUsageLog.objects.filter(
            created_at__gte=now - timedelta(hours=24)
        ).count(),
        "trades_total": trades["n"],
        "pnl_total": trades["pnl"] or 0,
    }


def license_usage(*, license: License) -> dict:
    now = timezone.now()
    row = ApiUsageLog.objects.filter(license=license).aggregate(
        total=Count("id"),
        last_24h=Count("id", filter=Q(created_at__gte=now - timedelta(hours=24))),
        last_call_at=Max("created_at"),
    )
    return row


def license_detail(*, license: License) -> dict:
    return {
        "license": license,
        "last_active": license.last_active_at,
        "api_usage": license_usage(license=license),
        "trade_stats": trade_stats(license=license),
    }


def calls_per_day(*, days: int = 30) -> list[Mapping[str, Any]]:
    """[{day, calls}] for the last `days` UTC days, oldest first."""
    since = timezone.now() - timedelta(days=days)
    return list(
        ApiUsageLog.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(calls=Count("id"))
        .order_by("day")
    )
