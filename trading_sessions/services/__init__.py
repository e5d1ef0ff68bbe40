"""Every write and workflow of trading sessions (see the modules for the rules)."""

from .broker_accounts import (
    BalanceAnswer,
    broker_account_balance,
    broker_account_check,
    broker_account_create,
    broker_account_delete,
    broker_account_update,
    broker_credentials,
)
from .sessions import (
    session_create,
    session_delete,
    session_start,
    session_stop,
    session_update,
    sessions_stop,
    user_trading_stop,
)
from .signals import (
    ParsedSignal,
    SignalOutcome,
    channel_get,
    channel_subscribe,
    channel_unsubscribe,
    signal_fan_out,
    signal_parse,
    signal_receive,
    signals_resume,
)
from .telegram import telegram_poll
from .trades import trade_manual, trade_settle, trades_open, trades_settle, trades_sweep

__all__ = [
    "BalanceAnswer",
    "ParsedSignal",
    "SignalOutcome",
    "broker_account_balance",
    "broker_account_check",
    "broker_account_create",
    "broker_account_delete",
    "broker_account_update",
    "broker_credentials",
    "channel_get",
    "channel_subscribe",
    "channel_unsubscribe",
    "session_create",
    "session_delete",
    "session_start",
    "session_stop",
    "session_update",
    "sessions_stop",
    "signal_fan_out",
    "signal_parse",
    "signal_receive",
    "signals_resume",
    "telegram_poll",
    "trade_manual",
    "trade_settle",
    "trades_open",
    "trades_settle",
    "trades_sweep",
    "user_trading_stop",
]
