"""What the demo provisioning server answers: frozen values, money as Decimal, UTC times."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class DemoAccount:
    """A demo account the server created; `password` is kept out of `repr` (and so logs)."""

    login: int
    password: str = field(repr=False)
    server: str
    balance: Decimal
    leverage: int
    currency: str
    created_at: datetime


@dataclass(frozen=True)
class DemoAccountStatus:
    """Health of one demo account; `exists` is False once the server has forgotten it."""

    login: int
    exists: bool
    enabled: bool
    connected: bool
    balance: Decimal
    equity: Decimal
