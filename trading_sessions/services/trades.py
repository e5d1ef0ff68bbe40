"""Trades: opened through the broker by workers, settled after their duration, by hand too.

- Opening sends the trade's `client_order_id` with every attempt, so a retry after a timeout
  gets the trade the broker already opened instead of a second one. A transient fault leaves
  the trade pending with a backoff; the sweeper retries it.
- Settling asks the broker for the outcome once the trade has expired and records it with a
  conditional UPDATE (open -> result): one settler wins, however many run. The session's run
  statistics, gale step and stop rules are updated under its row lock in the same
  transaction, so no update is lost and no stop is missed.
"""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from core.errors import ApplicationError, NotFoundError
from core.money import ZERO
from gateways.broker import get_broker_gateway
from gateways.errors import GatewayError, PermanentGatewayError
from licensing.models import Quota
from licensing.services import subscriptions_lapsed

from ..engine import GaleSettings, loss_budget, next_gale_count, stop_reason
from ..errors import LossBudgetError, PlanEndedError, SessionNotActiveError
from ..models import BrokerAccount, Trade, TradingSession
from .broker_accounts import broker_credentials
from .common import enqueue, logger, quota_require
from .sessions import _mark_stopped
from .signals import MAX_DURATION, MIN_DURATION, asset_normalize

# How `user_trading_stop` fails the pending trades of a closed account.
CLOSED_UNSENT = f"{TradingSession.StopReason.ACCOUNT_CLOSED}: not sent to the broker"
# Why the broker refused an open, and what it means for the session.
STOPS_SESSION = {
    "auth_failed": TradingSession.StopReason.BROKER_AUTH,
    "insufficient_funds": TradingSession.StopReason.INSUFFICIENT_FUNDS,
    "account_closed": TradingSession.StopReason.ACCOUNT_CLOSED,
}


def trade_manual(
    *, user, session_id: int, asset: str, direction: str, amount: Decimal, duration: int
) -> Trade:
    """Place a trade by hand on a running session of the user's (quotas and loss budget hold)."""
    asset = asset_normalize(asset)
    if direction not in ("call", "put"):
        raise ApplicationError("direction is call or put.", code="invalid_direction")
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ApplicationError("amount is positive, in cents.", code="invalid_amount")
    if not MIN_DURATION <= int(duration) <= MAX_DURATION:
        raise ApplicationError(
            f"duration is {MIN_DURATION} to {MAX_DURATION} seconds.", code="invalid_duration"
        )
    session = TradingSession.objects.filter(user=user, pk=session_id).first()
    if session is None:
        raise NotFoundError("No such session.", code="session_not_found")
    now = timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Trade.objects.filter(user=user)
    with transaction.atomic():
        # The quota lock first, then the session row: the order the fan-out takes them in.
        quota_require(
            user=user,
            what=Quota.TRADES_PER_DAY,
            used=lambda: (
                mine.filter(created_at__gte=day_start).exclude(result=Trade.Result.FAILED).count()
            ),
        )
        quota_require(
            user=user,
            what=Quota.OPEN_POSITIONS,
            used=lambda: mine.filter(result__in=Trade.UNSETTLED).count(),
        )
        if subscriptions_lapsed(user_ids=[user.pk], now=now):
            raise PlanEndedError()
        session = TradingSession.objects.select_for_update().get(pk=session.pk)
        if not session.is_active:
            raise SessionNotActiveError("Start the session to trade on it.")
        at_risk = (
            Trade.objects.filter(session=session, result__in=Trade.UNSETTLED).aggregate(
                total=Sum("amount")
            )["total"]
            or ZERO
        )
        budget = loss_budget(GaleSettings.from_json(session.settings_snapshot), session.net_profit)
        budget -= at_risk
        if amount > budget:
            raise LossBudgetError(
                f"The session may still lose {max(budget, ZERO)} before its stop loss.",
                extra={"loss_budget": str(max(budget, ZERO))},
            )
        trade = Trade.objects.create(
            user=user,
            session=session,
            account_id=session.account_id,
            source=Trade.Source.MANUAL,
            asset=asset,
            direction=direction,
            amount=amount,
            duration=int(duration),
            created_at=now,
        )
        enqueue("open_trades", trade_ids=[trade.pk])
    return trade


def trades_open(*, trade_ids: list[int]) -> dict[str, int]:
    """Open pending trades at the broker; returns counts by outcome."""
    counts: dict[str, int] = defaultdict(int)
    trades = list(
        Trade.objects.filter(pk__in=trade_ids, result=Trade.Result.PENDING)
        .select_related("account")
        .annotate(owner_active=F("user__is_active"))
        .order_by("pk")
    )
    gateway = get_broker_gateway()
    credentials = {}
    settle_at: dict[int, list[int]] = defaultdict(list)
    for trade in trades:
        if not trade.owner_active:
            # Deactivated without `user_deactivate` (which fails these itself): never send it.
            _trade_fail(trade, code="account_closed", detail="the owner's account is inactive")
            counts["failed"] += 1
            continue
        if trade.account_id not in credentials:
            credentials[trade.account_id] = broker_credentials(trade.account)
        outcome = _open_one(gateway, trade, credentials[trade.account_id])
        counts[outcome] += 1
        if outcome == "opened":
            assert trade.expires_at is not None  # an opened trade has the broker's expiry
            settle_at[int(trade.expires_at.timestamp()) + 1].append(trade.pk)
    for second, ids in settle_at.items():
        eta = datetime.fromtimestamp(second, tz=UTC)
        enqueue("settle_trades", eta=eta, trade_ids=ids)
    return dict(counts)


def _open_one(gateway, trade: Trade, credentials) -> str:
    try:
        opened = gateway.open_trade(
            credentials,
            asset=trade.asset,
            direction=trade.direction,
            amount=trade.amount,
            duration_seconds=trade.duration,
            client_order_id=str(trade.client_order_id),
        )
    except PermanentGatewayError as exc:
        _trade_fail(trade, code=exc.code or "refused", detail=str(exc))
        return "failed"
    except GatewayError as exc:
        return _trade_retry_later(trade, detail=str(exc))
    opened_fields = {
        "result": Trade.Result.OPEN,
        "broker_trade_id": opened.trade_id,
        "opened_at": opened.opened_at,
        "expires_at": opened.expires_at,
        "attempts": F("attempts") + 1,
        "next_attempt_at": None,
    }
    updated = Trade.objects.filter(pk=trade.pk, result=Trade.Result.PENDING).update(**opened_fields)
    if not updated:
        # The owner's account closed while this call was at the broker, which opened it all
        # the same: record what the broker holds, so that it settles like any other.
        updated = Trade.objects.filter(
            pk=trade.pk, result=Trade.Result.FAILED, failure_reason__startswith=CLOSED_UNSENT
        ).update(**opened_fields, failure_reason="", closed_at=None)
    trade.broker_trade_id, trade.expires_at = opened.trade_id, opened.expires_at
    return "opened" if updated else "already"


def _trade_retry_later(trade: Trade, *, detail: str) -> str:
    """A fault that may pass: try again later, up to the give-up deadline."""
    now = timezone.now()
    if now - trade.created_at > timedelta(seconds=settings.TRADING_OPEN_GIVE_UP_SECONDS):
        _trade_fail(trade, code="broker_unavailable", detail=f"gave up opening: {detail}")
        return "failed"
    delay = min(60.0, 2.0 ** (trade.attempts + 1)) * random.uniform(0.5, 1.0)
    Trade.objects.filter(pk=trade.pk, result=Trade.Result.PENDING).update(
        attempts=F("attempts") + 1,
        next_attempt_at=now + timedelta(seconds=delay),
        failure_reason=detail[:300],
    )
    logger.warning("trade %s: broker fault, retry in %.0f s (%s)", trade.pk, delay, detail)
    return "retry"


def _trade_fail(trade: Trade, *, code: str, detail: str) -> None:
    """The broker refused: the trade failed, the session takes the next signal (or stops)."""
    with transaction.atomic():
        failed = Trade.objects.filter(pk=trade.pk, result=Trade.Result.PENDING).update(
            result=Trade.Result.FAILED,
            failure_reason=f"{code}: {detail}"[:300],
            closed_at=timezone.now(),
            attempts=F("attempts") + 1,
        )
        if not failed or trade.session_id is None:
            return
        session = TradingSession.objects.select_for_update().get(pk=trade.session_id)
        if trade.source == Trade.Source.SIGNAL:
            session.trade_in_flight = False
            session.save(update_fields=["trade_in_flight", "updated_at"])
        if session.is_active and code in STOPS_SESSION:
            _mark_stopped(session, reason=STOPS_SESSION[code])
    logger.warning("trade %s failed: %s", trade.pk, code)


def trades_settle(*, trade_ids: list[int] | None = None, limit: int = 500) -> dict[str, int]:
    """Settle open trades whose time is up (the given ones, or the most overdue)."""
    now = timezone.now()
    due = Trade.objects.filter(result=Trade.Result.OPEN, expires_at__lte=now)
    if trade_ids is not None:
        due = due.filter(pk__in=trade_ids)
    trades = list(due.select_related("account").order_by("expires_at", "pk")[:limit])
    gateway = get_broker_gateway()
    credentials = {}
    counts: dict[str, int] = defaultdict(int)
    for trade in trades:
        if trade.account_id not in credentials:
            credentials[trade.account_id] = broker_credentials(trade.account)
        try:
            answer = gateway.get_trade_result(credentials[trade.account_id], trade.broker_trade_id)
        except GatewayError as exc:
            logger.warning("trade %s: result not available yet (%s)", trade.pk, exc)
            counts["retry"] += 1
            continue
        if answer.status == "open":
            counts["not_yet"] += 1
            continue
        counts[trade_settle(trade=trade, result=answer.status, profit=answer.profit)] += 1
    return dict(counts)


def trade_settle(*, trade: Trade, result: str, profit: Decimal) -> str:
    """Record a trade's outcome once and apply it to its session; "settled" or "already"."""
    with transaction.atomic():
        claimed = Trade.objects.filter(pk=trade.pk, result=Trade.Result.OPEN).update(
            result=result, profit=profit, closed_at=timezone.now()
        )
        if not claimed:
            return "already"
        BrokerAccount.objects.filter(pk=trade.account_id, last_balance__isnull=False).update(
            last_balance=F("last_balance") + profit
        )
        if trade.session_id is not None:
            _apply_to_session(trade, result=result, profit=profit)
    return "settled"


def _apply_to_session(trade: Trade, *, result: str, profit: Decimal) -> None:
    assert trade.session_id is not None  # called only for a session's trade
    session = TradingSession.objects.select_for_update().filter(pk=trade.session_id).first()
    if session is None:
        return
    fields = ["updated_at"]
    if trade.source == Trade.Source.SIGNAL:
        session.trade_in_flight = False
        fields.append("trade_in_flight")
    # A trade of an earlier run (stopped, then started again) is history, not this run.
    if session.started_at is not None and trade.created_at >= session.started_at:
        gale = GaleSettings.from_json(session.settings_snapshot)
        session.net_profit += profit
        session.total_trades += 1
        if result == "win":
            session.winning_trades += 1
        elif result == "loss":
            session.losing_trades += 1
        else:
            session.draw_trades += 1
        fields += ["net_profit", "total_trades", "winning_trades", "losing_trades", "draw_trades"]
        if trade.source == Trade.Source.SIGNAL:
            session.current_gale_count = next_gale_count(
                gale, gale_count=session.current_gale_count, result=result
            )
            fields.append("current_gale_count")
        session.save(update_fields=fields)
        reason = stop_reason(gale, net_profit=session.net_profit) if session.is_active else None
        if reason:
            _mark_stopped(session, reason=reason)
        return
    session.save(update_fields=fields)


def trades_sweep(*, limit: int = 500) -> dict[str, int]:
    """Beat's safety net: retry pending trades that are due, settle overdue ones.

    A worker that died after committing a trade but before opening or settling it leaves
    exactly what this finds."""
    now = timezone.now()
    grace = timedelta(seconds=settings.TRADING_SETTLE_GRACE_SECONDS)
    pending = list(
        Trade.objects.filter(result=Trade.Result.PENDING)
        .filter(
            Q(next_attempt_at__lte=now)
            | Q(next_attempt_at__isnull=True, created_at__lte=now - grace)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    opened = trades_open(trade_ids=pending) if pending else {}
    overdue = list(
        Trade.objects.filter(result=Trade.Result.OPEN, expires_at__lte=now - grace)
        .order_by("expires_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    settled = trades_settle(trade_ids=overdue) if overdue else {}
    return {
        "pending_retried": len(pending),
        "opened": opened.get("opened", 0),
        "overdue": len(overdue),
        "settled": settled.get("settled", 0),
    }
