"""Reads of trading sessions that are more than one queryset: status, statistics, gauges."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from core.money import ZERO

from .engine import GaleSettings, next_stake
from .models import Signal, Trade, TradingSession

PERIODS = ("today", "last_7_days", "last_30_days", "all")
CUSTOM = "custom"  # a `since`/`until` range instead of a named period


def win_rate(wins: int, total: int) -> float:
    """Wins as a percentage of all settled trades (draws count as trades), 2 decimals."""
    if not total:
        return 0.0
    return float((Decimal(wins) * 100 / Decimal(total)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def duration_text(seconds: float) -> str:
    """ "2h 35m", "4m", "0m": how long a run has lasted."""
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    parts.append(f"{minutes}m")
    return " ".join(parts)


def session_status(session: TradingSession) -> dict:
    """What `sessions/{id}/status/` answers."""
    now = timezone.now()
    if session.started_at is None:
        duration = 0.0
    else:
        duration = ((session.stopped_at or now) - session.started_at).total_seconds()
    gale = (
        GaleSettings.from_json(session.settings_snapshot)
        if session.is_active and session.settings_snapshot
        else GaleSettings.of(session)
    )
    # As the fan-out decides: open trades of the session come off the loss budget first.
    at_risk = session.trades.filter(result__in=Trade.UNSETTLED).aggregate(total=Sum("amount"))[
        "total"
    ] or Decimal("0")
    stake = next_stake(
        gale, gale_count=session.current_gale_count, net_profit=session.net_profit - at_risk
    )
    last = session.trades.order_by("-created_at", "-id").first()
    return {
        "session_id": session.pk,
        "is_active": session.is_active,
        "current_balance": session.account.last_balance,
        "net_profit": session.net_profit,
        "total_trades": session.total_trades,
        "winning_trades": session.winning_trades,
        "losing_trades": session.losing_trades,
        "draw_trades": session.draw_trades,
        "win_rate": win_rate(session.winning_trades, session.total_trades),
        "session_duration": duration_text(duration),
        "current_gale_count": session.current_gale_count,
        "next_stake": stake if session.is_active else None,
        "started_at": session.started_at,
        "stopped_at": session.stopped_at,
        "stop_reason": session.stop_reason,
        "last_trade": None
        if last is None
        else {
            "id": last.pk,
            "asset": last.asset,
            "direction": last.direction,
            "amount": last.amount,
            "result": last.result,
            "profit": last.profit,
            "timestamp": last.closed_at or last.opened_at or last.created_at,
        },
    }


def period_start(period: str, now: datetime | None = None) -> datetime | None:
    """Where a period begins: today and the last N days run in whole UTC days up to now."""
    now = (now or timezone.now()).astimezone(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "today": today,
        "last_7_days": today - timedelta(days=6),
        "last_30_days": today - timedelta(days=29),
        "all": None,
    }[period]


def trade_statistics(
    *,
    user,
    session_id: int | None = None,
    period: str = "all",
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict:
    """Settled trades of the user (or one of their sessions) in a period, by UTC day of
    settlement: totals, win rate, net profit, best and worst day.

    `period` is a named one, or "custom" with `since` (inclusive) and/or `until` (exclusive)
    on the settlement time. The worst day is the day with the lowest net; its `loss` is that
    net when it is below zero, else None (no day lost money)."""
    trades = Trade.objects.filter(user=user, result__in=Trade.SETTLED)
    if session_id is not None:
        trades = trades.filter(session_id=session_id)
    if period != "custom":
        since, until = period_start(period), None
    if since is not None:
        trades = trades.filter(closed_at__gte=since)
    if until is not None:
        trades = trades.filter(closed_at__lt=until)
    totals = trades.aggregate(
        total=Count("pk"),
        wins=Count("pk", filter=Q(result=Trade.Result.WIN)),
        losses=Count("pk", filter=Q(result=Trade.Result.LOSS)),
        draws=Count("pk", filter=Q(result=Trade.Result.DRAW)),
        net=Sum("profit"),
    )
    days = list(
        trades.annotate(day=TruncDate("closed_at", tzinfo=UTC))
        .order_by()
        .values("day")
        .annotate(profit=Sum("profit"), trades=Count("pk"))
        .order_by("day")
    )
    best = max(days, key=lambda d: d["profit"], default=None)
    worst = min(days, key=lambda d: d["profit"], default=None)
    return {
        "session_id": session_id,
        "period": period,
        "since": since,
        "until": until,
        "total_trades": totals["total"],
        "winning_trades": totals["wins"],
        "losing_trades": totals["losses"],
        "draw_trades": totals["draws"],
        "win_rate": win_rate(totals["wins"], totals["total"]),
        "net_profit": totals["net"] or ZERO,
        "best_day": None
        if best is None
        else {"date": best["day"], "profit": best["profit"], "trades": best["trades"]},
        "worst_day": None
        if worst is None
        else {
            "date": worst["day"],
            "loss": worst["profit"] if worst["profit"] < 0 else None,
            "profit": worst["profit"],
            "trades": worst["trades"],
        },
    }


def trading_gauges() -> dict:
    """Active sessions, trades opened in the last minute, and fan-out times (for /metrics)."""
    now = timezone.now()
    last_signal = (
        Signal.objects.filter(status=Signal.Status.DONE, fanout_ms__isnull=False)
        .order_by("-received_at")
        .values("fanout_ms", "trades_created")
        .first()
    )
    return {
        "active_sessions": TradingSession.objects.filter(is_active=True).count(),
        "trades_last_minute": Trade.objects.filter(
            created_at__gte=now - timedelta(minutes=1)
        ).count(),
        "trades_unsettled": Trade.objects.filter(result__in=Trade.UNSETTLED).count(),
        "last_fanout_ms": (last_signal["fanout_ms"] or 0) if last_signal else 0,
        "last_fanout_trades": (last_signal["trades_created"] or 0) if last_signal else 0,
    }
