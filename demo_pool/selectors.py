"""Reads of the demo pool that are more than one queryset: pool status, account health."""

import math
from datetime import timedelta
from typing import cast

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from delivery.models import Delivery
from demo_pool.models import (
    ActivationRequest,
    DemoAccount,
    PoolConfig,
    PressPass,
    ProvisioningRequest,
)
from demo_pool.services.common import status_counts

WINDOW = timedelta(days=7)
LATENCY_SAMPLE = 10_000


def _percentile(values: list[int], pct: float) -> int | None:
    if not values:
        return None
    values = sorted(values)
    rank = max(0, math.ceil(pct / 100 * len(values)) - 1)
    return values[rank]


def pool_status() -> dict:
    """The pool's counts, sizing and quality over the last 7 days (see API.md)."""
    config = PoolConfig.load()
    counts = status_counts()
    since = timezone.now() - WINDOW
    # A request is done with its latency recorded.
    latencies = cast(
        "list[int]",
        list(
            ProvisioningRequest.objects.filter(
                status=ProvisioningRequest.Status.DONE, finished_at__gte=since
            )
            .order_by("-finished_at")
            .values_list("latency_ms", flat=True)[:LATENCY_SAMPLE]
        ),
    )
    passes = PressPass.objects.filter(activated_at__gte=since).aggregate(
        total=Count("id"), instant=Count("id", filter=Q(was_queued=False))
    )
    unserved = (
        ActivationRequest.objects.filter(created_at__gte=since)
        .exclude(status=ActivationRequest.Status.ASSIGNED)
        .count()
    )
    asked = passes["total"] + unserved
    deliveries = Delivery.objects.filter(
        purpose__startswith="demo_pool.", created_at__gte=since
    ).aggregate(total=Count("id"), failed=Count("id", filter=Q(status=Delivery.Status.FAILED)))
    return {
        "available": counts[DemoAccount.Status.AVAILABLE],
        "assigned": counts[DemoAccount.Status.ASSIGNED],
        "provisioning": counts[DemoAccount.Status.PROVISIONING],
        "failed": counts[DemoAccount.Status.FAILED],
        "expired": counts[DemoAccount.Status.EXPIRED],
        "retired": counts[DemoAccount.Status.RETIRED],
        "total": sum(counts.values()),
        "min_available": config.min_available,
        "target_buffer": config.target_buffer,
        "max_pool_size": config.max_pool_size,
        "availability_rate": round(passes["instant"] / asked, 4) if asked else 1.0,
        "queue_depth": ActivationRequest.objects.filter(
            status=ActivationRequest.Status.QUEUED
        ).count(),
        "provisioning_p50_ms": _percentile(latencies, 50),
        "provisioning_p95_ms": _percentile(latencies, 95),
        "delivery_success_rate": (
            round(1 - deliveries["failed"] / deliveries["total"], 4) if deliveries["total"] else 1.0
        ),
        # Not in the API (the rates say 1.0 with nothing to measure): for the dashboard.
        "activations_asked": asked,
        "deliveries_made": deliveries["total"],
    }


def availability_by_day(*, days: int = 7) -> list[dict]:
    """Per UTC day: activations, how many were served at once, and that rate (the chart)."""
    since = (timezone.now() - timedelta(days=days - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    rows = (
        PressPass.objects.filter(activated_at__gte=since)
        .annotate(day=TruncDate("activated_at"))
        .values("day")
        .annotate(total=Count("id"), instant=Count("id", filter=Q(was_queued=False)))
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    out = []
    for n in range(days):
        day = (since + timedelta(days=n)).date()
        row = by_day.get(day, {"total": 0, "instant": 0})
        rate = row["instant"] / row["total"] if row["total"] else None
        out.append({"day": day, "total": row["total"], "instant": row["instant"], "rate": rate})
    return out


def press_pass_current(*, user_id: str) -> PressPass | None:
    """The user's active press pass, else their latest one."""
    passes = PressPass.objects.select_related("account").filter(user_id=user_id)
    return (
        passes.filter(status=PressPass.Status.ACTIVE).first()
        or passes.order_by("-activated_at", "-id").first()
    )
