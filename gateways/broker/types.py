"""What the broker trading server takes and answers: frozen values, Decimal money, UTC times."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

AccountType = Literal["demo", "real"]
Direction = Literal["call", "put"]
TradeStatus = Literal["open", "win", "loss", "draw"]


@dataclass(frozen=True)
class BrokerCredentials:
    """A client's login on the broker; `password` is kept out of `repr` (and so logs)."""

    email: str
    password: str = field(repr=False)
    account_type: AccountType


@dataclass(frozen=True)
class BrokerConnection:
    """Whether the credentials work, and the balance they see (0.00 when they do not)."""

    connected: bool
    balance: Decimal


@dataclass(frozen=True)
class BrokerTrade:
    """A trade the broker opened: it runs until `expires_at`."""

    trade_id: str
    asset: str
    direction: Direction
    amount: Decimal
    opened_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class BrokerTradeResult:
    """A trade's outcome: `profit` is +amount*payout on a win, -amount on a loss, 0 on a draw
    or while open; `closed_at` is None while open."""

    trade_id: str
    status: TradeStatus
    profit: Decimal
    closed_at: datetime | None
