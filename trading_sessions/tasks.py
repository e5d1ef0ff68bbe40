"""Trading sessions' Celery tasks: thin, ids in, one service call, counts out."""

from celery import shared_task

from gateways.errors import TransientGatewayError

from .services import signals_resume, telegram_poll, trades_open, trades_settle, trades_sweep


@shared_task(name="trading_sessions.open_trades")
def open_trades(trade_ids: list[int]) -> dict:
    """Open these pending trades at the broker (a fault leaves them for the sweeper)."""
    return trades_open(trade_ids=trade_ids)


@shared_task(name="trading_sessions.settle_trades")
def settle_trades(trade_ids: list[int]) -> dict:
    """Settle these trades, scheduled for the second after they expire."""
    return trades_settle(trade_ids=trade_ids)


@shared_task(name="trading_sessions.sweep")
def sweep() -> dict:
    """Retry pending trades, settle overdue ones, finish interrupted fan-outs."""
    counts = trades_sweep()
    counts["fanouts_resumed"] = signals_resume()
    return counts


@shared_task(
    name="trading_sessions.read_telegram",
    autoretry_for=(TransientGatewayError,),
    retry_backoff=True,
    max_retries=2,
)
def read_telegram() -> dict:
    """Turn new posts of the signal channels into signals."""
    return telegram_poll()
