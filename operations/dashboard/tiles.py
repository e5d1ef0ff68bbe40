"""One function per tile: `tile_<name>(reads) -> Tile`, a few queries each, read through the
apps' selectors or with aggregates on their models."""

from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.urls import reverse

from accounts.models import MonitoredAccount
from bonuses.models import Bonus, CreditIntent
from campaigns.models import Campaign
from campaigns.selectors import campaigns_live
from delivery.models import Delivery
from demo_pool.models import DemoAccount, PoolConfig
from demo_pool.selectors import availability_by_day
from licensing.models import License
from licensing.selectors import calls_per_day
from trading_sessions.models import Trade, TradingSession

from ..charts import Point, bar_chart, line_chart
from .common import (
    Link,
    Reads,
    Tile,
    ago,
    changelist_url,
    count,
    daily_counts,
    day_bounds,
    day_label,
    days_from,
    money,
    percent,
)

CHART_DAYS = 30


def daily_bars(
    by_day: dict, start, *, model: str, label, **filters
) -> tuple[list[Point], int, int]:
    """One bar per day of the chart, each linking to that day's rows of `model` (with
    `filters`); returns (points, total over the days, today's count)."""
    days = days_from(start, CHART_DAYS)
    points = []
    for day in days:
        low, high = day_bounds(day)
        n = by_day.get(day, 0)
        url = changelist_url(model, **filters, created_at__gte=low, created_at__lt=high)
        points.append(Point(day_label(day), n, f"{day}: {label(n)}", url))
    return points, sum(by_day.get(day, 0) for day in days), by_day.get(days[-1], 0)


POOL_DAYS = 7
DELIVERY_DAYS = 7
EXPIRING_DAYS = 7  # the licensing admin's "Expiring within 7 days" filter (`expiring=7`)
# The monitor sweeps every second; a last sweep older than this means beat or the workers stopped.
SWEEP_STALE_SECONDS = 60
# A bonus counts as granted once its credit is on the server, whatever happened to it since.
GRANTED = (
    Bonus.Status.ACTIVE,
    Bonus.Status.CONVERTED,
    Bonus.Status.CANCELLED,
    Bonus.Status.EXPIRED,
)


# --- Campaigns and bonuses -------------------------------------------------------------------


def tile_campaigns(reads: Reads) -> Tile:
    active = Campaign.objects.filter(status=Campaign.Status.ACTIVE).count()
    live = campaigns_live(at=reads.now).count()
    waiting = active - live
    detail = f"{live} granting now" + (f", {waiting} outside their dates" if waiting else "")
    return Tile(
        key="campaigns_active",
        title="Active campaigns",
        value=f"{active:,}",
        detail=detail,
        url=changelist_url("campaigns.campaign", status__exact=Campaign.Status.ACTIVE),
        figures={"active": active, "live": live},
    )


def tile_bonuses_active(reads: Reads) -> Tile:
    row = Bonus.objects.filter(status=Bonus.Status.ACTIVE).aggregate(
        n=Count("pk"), credit=Sum("credit_remaining")
    )
    credit = row["credit"] or Decimal("0.00")
    return Tile(
        key="bonuses_active",
        title="Active bonuses",
        value=f"{row['n']:,}",
        detail=f"Credit outstanding {money(credit)}",
        url=changelist_url("bonuses.bonus", status__exact=Bonus.Status.ACTIVE),
        figures={"active": row["n"], "credit_outstanding": credit},
    )


def tile_conversions(reads: Reads) -> Tile:
    """Type C credit turned into balance this week: the ledger's done balance-in writes."""
    start = reads.week_start
    row = CreditIntent.objects.filter(
        kind=CreditIntent.Kind.BALANCE_IN, status=CreditIntent.Status.DONE, created_at__gte=start
    ).aggregate(n=Count("pk"), amount=Sum("amount"))
    amount = row["amount"] or Decimal("0.00")
    return Tile(
        key="conversions_week",
        title="Conversions this week",
        value=f"{row['n']:,}",
        detail=f"{money(amount)} moved from credit to balance since Monday",
        url=changelist_url(
            "bonuses.creditintent",
            kind__exact=CreditIntent.Kind.BALANCE_IN,
            status__exact=CreditIntent.Status.DONE,
            created_at__gte=start,
        ),
        figures={"conversions": row["n"], "amount": amount, "since": start},
    )


def tile_bonuses_per_day(reads: Reads) -> Tile:
    start = reads.since(CHART_DAYS)
    granted = Bonus.objects.filter(status__in=GRANTED)
    by_day = daily_counts(granted, "created_at", start=start)
    amount = granted.filter(created_at__gte=start).aggregate(total=Sum("amount"))["total"]
    points, total, today = daily_bars(
        by_day, start, model="bonuses.bonus", label=lambda n: f"{n} granted", status__in=GRANTED
    )
    return Tile(
        key="bonuses_per_day",
        title=f"Bonuses granted per day ({CHART_DAYS} days)",
        value=f"{total:,}",
        detail=f"{money(amount)} credit granted; {today} today",
        url=changelist_url("bonuses.bonus", status__in=GRANTED, created_at__gte=start),
        chart=bar_chart(points, title=f"Bonuses granted per day, last {CHART_DAYS} days"),
        wide=True,
        figures={"total": total, "amount": amount or Decimal("0.00"), "per_day": by_day},
    )


# --- The monitor -----------------------------------------------------------------------------


def tile_monitor_paused(reads: Reads) -> Tile:
    status = reads.monitor
    paused = status["paused"]
    return Tile(
        key="monitor_paused",
        title="Accounts paused by the monitor",
        value=f"{paused:,}",
        detail=f"of {status['accounts_total']:,} monitored; paused after repeated errors",
        url=changelist_url(
            "accounts.monitoredaccount", status__exact=MonitoredAccount.Status.PAUSED
        ),
        state="alert" if paused else "",
        figures={"paused": paused, "total": status["accounts_total"]},
    )


def tile_last_sweep(reads: Reads) -> Tile:
    status = reads.monitor
    at = status["last_sweep_at"]
    age = (reads.now - at).total_seconds() if at else None
    if age is None:
        value, detail = "never", "No sweep recorded yet: are beat and a worker running?"
    else:
        value = ago(age)
        took = f"took {status['last_sweep_ms']} ms; " if status["last_sweep_ms"] is not None else ""
        detail = (
            f"{at:%Y-%m-%d %H:%M:%S} UTC; {took}{count(status['events_pending'], 'event')} waiting"
        )
    return Tile(
        key="monitor_last_sweep",
        title="Last monitor sweep",
        value=value,
        detail=detail,
        url=changelist_url(
            "accounts.monitoredaccount", status__exact=MonitoredAccount.Status.ACTIVE
        ),
        state="alert" if age is None or age > SWEEP_STALE_SECONDS else "",
        figures={"at": at, "age_seconds": age, "events_pending": status["events_pending"]},
    )


# --- Demo pool and delivery ------------------------------------------------------------------


def tile_pool(reads: Reads) -> Tile:
    """The seed's "pool availability rate": press passes served at once, per day and overall."""
    days = availability_by_day(days=POOL_DAYS)
    available = DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE).count()
    # Read, never created here (PoolConfig.load would write on a GET): the default until saved.
    minimum = (
        PoolConfig.objects.filter(pk=PoolConfig.SINGLETON_PK)
        .values_list("min_available", flat=True)
        .first()
    )
    if minimum is None:
        minimum = PoolConfig._meta.get_field("min_available").default
    total = sum(d["total"] for d in days)
    instant = sum(d["instant"] for d in days)
    rate = instant / total if total else None
    points = [
        Point(
            day_label(d["day"]),
            None if d["rate"] is None else round(d["rate"] * 100, 1),
            f"{d['day']}: {d['instant']} of {d['total']} served at once"
            if d["total"]
            else f"{d['day']}: no activations",
        )
        for d in days
    ]
    start = reads.since(POOL_DAYS)
    return Tile(
        key="pool_availability",
        title=f"Demo pool availability ({POOL_DAYS} days)",
        value=percent(rate),
        detail=(
            f"{instant:,} of {count(total, 'press pass', 'press passes')} served at once; "
            f"{count(available, 'account')} available now (minimum {minimum:,})"
        ),
        url=changelist_url("demo_pool.presspass", activated_at__gte=start),
        links=(
            Link(
                f"{available:,} available accounts",
                changelist_url("demo_pool.demoaccount", status__exact=DemoAccount.Status.AVAILABLE),
            ),
            Link("Pool dashboard", reverse("admin:demo_pool_dashboard")),
        ),
        chart=line_chart(
            points,
            title=f"Press passes served at once, last {POOL_DAYS} days",
            unit="%",
            top=100,
            empty="No activations in this period yet",
        ),
        state="alert" if available < minimum else "",
        wide=True,
        figures={
            "rate": rate,
            "activations": total,
            "instant": instant,
            "available": available,
            "min_available": minimum,
        },
    )


def tile_delivery(reads: Reads) -> Tile:
    """Delivered over delivered-or-failed, as `delivery.selectors.DeliveryStats` counts, over
    the deliveries made in the last 7 days."""
    start = reads.since(DELIVERY_DAYS)
    row = Delivery.objects.filter(created_at__gte=start).aggregate(
        total=Count("pk"),
        delivered=Count("pk", filter=Q(sent_at__isnull=False)),
        failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
    )
    tried = row["delivered"] + row["failed"]
    rate = row["delivered"] / tried if tried else None
    return Tile(
        key="delivery_success",
        title=f"Delivery success rate ({DELIVERY_DAYS} days)",
        value=percent(rate),
        detail=(
            f"{row['delivered']:,} delivered, {row['failed']:,} failed "
            f"of {count(row['total'], 'link')}"
        ),
        url=changelist_url("delivery.delivery", created_at__gte=start),
        links=(
            Link(
                f"{row['failed']:,} failed",
                changelist_url(
                    "delivery.delivery", status__exact=Delivery.Status.FAILED, created_at__gte=start
                ),
            ),
        ),
        state="warn" if rate is not None and rate < 0.95 else "",
        figures={**row, "rate": rate},
    )


# --- Licensing -------------------------------------------------------------------------------


def tile_licenses_expiring(reads: Reads) -> Tile:
    until = reads.now + timedelta(days=EXPIRING_DAYS)
    row = License.objects.aggregate(
        total=Count("pk"),
        expiring=Count("pk", filter=Q(expires_at__gt=reads.now, expires_at__lte=until)),
    )
    return Tile(
        key="licenses_expiring",
        title=f"Licenses expiring in {EXPIRING_DAYS} days",
        value=f"{row['expiring']:,}",
        detail=f"of {count(row['total'], 'license')}",
        url=changelist_url("licensing.license", expiring=str(EXPIRING_DAYS)),
        state="warn" if row["expiring"] else "",
        figures=row,
    )


def tile_api_calls(reads: Reads) -> Tile:
    start = reads.since(CHART_DAYS)
    by_day = {row["day"]: row["calls"] for row in calls_per_day(days=CHART_DAYS)}
    points, total, today = daily_bars(
        by_day, start, model="licensing.apiusagelog", label=lambda n: count(n, "call")
    )
    return Tile(
        key="api_calls",
        title=f"API calls per day ({CHART_DAYS} days)",
        value=f"{today:,} today",
        detail=f"{count(total, 'call')} logged in {CHART_DAYS} days",
        url=changelist_url("licensing.apiusagelog", created_at__gte=start),
        chart=bar_chart(points, title=f"Licensing API calls per day, last {CHART_DAYS} days"),
        wide=True,
        figures={
            "today": today,
            "total": total,
            "per_day": {d: by_day.get(d, 0) for d in days_from(start, CHART_DAYS)},
        },
    )


# --- Trading sessions ------------------------------------------------------------------------


def tile_sessions(reads: Reads) -> Tile:
    row = TradingSession.objects.aggregate(
        total=Count("pk"), active=Count("pk", filter=Q(is_active=True))
    )
    return Tile(
        key="sessions_active",
        title="Active trading sessions",
        value=f"{row['active']:,}",
        detail=f"of {count(row['total'], 'session')}",
        url=changelist_url("trading_sessions.tradingsession", is_active__exact=1),
        figures=row,
    )


def tile_trades_per_day(reads: Reads) -> Tile:
    start = reads.since(CHART_DAYS)
    by_day = daily_counts(Trade.objects.all(), "created_at", start=start)
    open_now = Trade.objects.filter(result__in=Trade.UNSETTLED).count()
    points, total, today = daily_bars(
        by_day, start, model="trading_sessions.trade", label=lambda n: count(n, "trade")
    )
    return Tile(
        key="trades_per_day",
        title=f"Trades per day ({CHART_DAYS} days)",
        value=f"{today:,} today",
        detail=f"{count(total, 'trade')} in {CHART_DAYS} days; {open_now:,} open now",
        url=changelist_url("trading_sessions.trade", created_at__gte=start),
        links=(
            Link(
                f"{open_now:,} open",
                changelist_url("trading_sessions.trade", result__in=Trade.UNSETTLED),
            ),
        ),
        chart=bar_chart(points, title=f"Trades opened per day, last {CHART_DAYS} days"),
        wide=True,
        figures={"today": today, "total": total, "open": open_now, "per_day": by_day},
    )
