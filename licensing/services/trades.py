"""Trades reported by license holders, and their statistics."""

from decimal import Decimal

from django.db.models import Count, Q, Sum

from core.errors import ApplicationError
from core.money import CENT

from ..models import License, ReportedTrade


def trade_report(*, license: License, **fields) -> ReportedTrade:
    """Record one closed trade (prices and quantity > 0, closed after opened)."""
    for name in ("entry_price", "exit_price", "quantity"):
        if fields[name] <= 0:
            raise ApplicationError(f"{name} must be greater than 0.", code="invalid_trade")
    if fields["closed_at"] <= fields["opened_at"]:
        raise ApplicationError("closed_at must be after opened_at.", code="invalid_trade")
    return ReportedTrade.objects.create(license=license, **fields)


def trade_stats(*, license: License | None = None) -> dict:
    """{total_trades, wins, losses, win_rate (percent), total_pnl, avg_pnl}; all when None."""
    trades = ReportedTrade.objects.all()
    if license is not None:
        trades = trades.filter(license=license)
    row = trades.aggregate(
        total=Count("id"),
        wins=Count("id", filter=Q(pnl__gt=0)),
        losses=Count("id", filter=Q(pnl__lt=0)),
        pnl=Sum("pnl"),
    )
    total, pnl = row["total"], row["pnl"] or Decimal("0")
    return {
        "total_trades": total,
        "wins": row["wins"],
        "losses": row["losses"],
        "win_rate": (Decimal(row["wins"] * 100) / total).quantize(CENT)
        if total
        else Decimal("0.00"),
        "total_pnl": pnl.quantize(CENT),
        "avg_pnl": (pnl / total).quantize(CENT) if total else Decimal("0.00"),
    }
