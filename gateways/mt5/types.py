"""What the MT5 manager gateway returns: frozen dataclasses, money as `Decimal` cents, UTC times.

The same values come back from the simulated server and from the Web API client, so the product
never sees which one it talks to.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import models

from core.money import CENT
from gateways.errors import PermanentGatewayError

# MT5 stores a deal comment in 32 characters including the terminator: 31 usable. A longer
# one is cut, not refused, and the unknown-outcome check (find the deal by its comment) would
# never find it.
COMMENT_MAX_LENGTH = 31


def to_money(value: Decimal | int | str) -> Decimal:
    """Return `value` as a Decimal quantized to cents; floats are refused (they are not money)."""
    if isinstance(value, float):
        raise TypeError("money is Decimal, int or str, never float")
    return Decimal(value).quantize(CENT)


def to_lots(value: Decimal | int | str) -> Decimal:
    """Return a volume in lots (MT5's smallest step is 0.01 lot)."""
    if isinstance(value, float):
        raise TypeError("volumes are Decimal, int or str, never float")
    return Decimal(value).quantize(CENT)


def check_comment(comment: str, *, gateway: str = "mt5") -> None:
    """Refuse a deal comment MT5 would cut short (PermanentGatewayError `invalid_comment`)."""
    if len(comment) > COMMENT_MAX_LENGTH:
        raise PermanentGatewayError(
            f"comment longer than {COMMENT_MAX_LENGTH} characters",
            gateway=gateway,
            code="invalid_comment",
        )


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("MT5 times must be timezone-aware")
    return value.astimezone(UTC)


class DealAction(models.TextChoices):
    """What a deal is. Only BALANCE deals are deposits and withdrawals."""

    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    BALANCE = "balance", "Balance"
    CREDIT = "credit", "Credit"
    CHARGE = "charge", "Charge"
    CORRECTION = "correction", "Correction"
    COMMISSION = "commission", "Commission"
    SO_COMPENSATION = "so_compensation", "Stop-out compensation"


class DealEntry(models.TextChoices):
    """Which way a trade deal moves a position; NONE for money operations."""

    IN = "in", "In"
    OUT = "out", "Out"
    INOUT = "inout", "Reverse"
    NONE = "none", "None"


class PositionSide(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


@dataclass(frozen=True, slots=True)
class MT5Account:
    """One client account as the manager sees it. Equity = balance + credit + floating profit."""

    login: int
    name: str
    group: str
    country: str
    lead_source: str
    balance: Decimal
    credit: Decimal
    equity: Decimal
    leverage: int
    currency: str
    enabled: bool
    registered_at: datetime

    def __post_init__(self) -> None:
        for name in ("balance", "credit", "equity"):
            object.__setattr__(self, name, to_money(getattr(self, name)))
        object.__setattr__(self, "registered_at", _utc(self.registered_at))


class AccountState(NamedTuple):
    """The four numbers the monitor watches, in the order it compares them.

    A plain tuple on purpose: a sweep builds and compares 100,000 of them a second, and a
    tuple compares with the stored snapshot without any per-field Python code.
    """

    balance: Decimal
    credit: Decimal
    equity: Decimal
    leverage: int


@dataclass(frozen=True, slots=True)
class MT5Deal:
    """One line of an account's deal history.

    For money operations (BALANCE, CREDIT, ...) `profit` is the signed amount, as in MT5;
    `volume` and `price` are then 0 and `position_id` is 0.
    """

    ticket: int
    login: int
    time: datetime
    action: DealAction
    entry: DealEntry
    symbol: str
    volume: Decimal
    price: Decimal
    profit: Decimal
    comment: str
    position_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", DealAction(self.action))
        object.__setattr__(self, "entry", DealEntry(self.entry))
        object.__setattr__(self, "time", _utc(self.time))
        object.__setattr__(self, "volume", to_lots(self.volume))
        object.__setattr__(self, "price", Decimal(self.price))
        object.__setattr__(self, "profit", to_money(self.profit))


@dataclass(frozen=True, slots=True)
class MT5Position:
    """One open position; `profit` is its floating profit now."""

    ticket: int
    login: int
    symbol: str
    side: PositionSide
    volume: Decimal
    open_price: Decimal
    profit: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", PositionSide(self.side))
        object.__setattr__(self, "volume", to_lots(self.volume))
        object.__setattr__(self, "open_price", Decimal(self.open_price))
        object.__setattr__(self, "profit", to_money(self.profit))
