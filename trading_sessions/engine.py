"""The gale engine: pure arithmetic on a session's settings and run state, no database.

Rules (shared/API.md "trading sessions"):

- After k losses in a row the stake is `trade_amount * gale_multiplier ** k`.
- A win resets k to 0. A draw (stake returned) repeats the same step: nothing was lost, so
  there is nothing to recover and no reason to climb.
- After `gale_limit` steps the ladder resets: a loss on step `gale_limit` goes back to 0.
- A stake is cut to what is left of the loss budget, `net_profit + stop_loss`, and to
  `max_trade_amount` when set, so a loss never carries `net_profit` below `-stop_loss`.
- The session stops at `net_profit >= stop_profit` or `net_profit <= -stop_loss`.
"""

from dataclasses import asdict, dataclass
from decimal import Decimal

from core.money import ZERO, cents_down


@dataclass(frozen=True)
class GaleSettings:
    """What a run trades with (the session's snapshot taken at start)."""

    trade_amount: Decimal
    gale_limit: int
    gale_multiplier: Decimal
    stop_profit: Decimal
    stop_loss: Decimal
    max_trade_amount: Decimal | None = None

    def to_json(self) -> dict:
        return {k: (None if v is None else str(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> "GaleSettings":
        cap = data.get("max_trade_amount")
        return cls(
            trade_amount=Decimal(data["trade_amount"]),
            gale_limit=int(data["gale_limit"]),
            gale_multiplier=Decimal(data["gale_multiplier"]),
            stop_profit=Decimal(data["stop_profit"]),
            stop_loss=Decimal(data["stop_loss"]),
            max_trade_amount=None if cap in (None, "") else Decimal(cap),
        )

    @classmethod
    def of(cls, session) -> "GaleSettings":
        """The settings a session holds now (what its next start will snapshot)."""
        return cls(
            trade_amount=session.trade_amount,
            gale_limit=session.gale_limit,
            gale_multiplier=session.gale_multiplier,
            stop_profit=session.stop_profit,
            stop_loss=session.stop_loss,
            max_trade_amount=session.max_trade_amount,
        )


def step_stake(settings: GaleSettings, step: int) -> Decimal:
    """The uncut stake of ladder step `step`: trade_amount * multiplier ** step, in cents."""
    return cents_down(settings.trade_amount * settings.gale_multiplier**step)


def ladder_exposure(settings: GaleSettings) -> Decimal:
    """What the full ladder loses in a row: the sum of every step's stake (each capped)."""
    total = ZERO
    for step in range(settings.gale_limit + 1):
        stake = step_stake(settings, step)
        if settings.max_trade_amount is not None:
            stake = min(stake, settings.max_trade_amount)
        total += stake
    return total


def loss_budget(settings: GaleSettings, net_profit: Decimal) -> Decimal:
    """What the run may still lose before it hits its stop loss."""
    return max(ZERO, net_profit + settings.stop_loss)


def next_stake(settings: GaleSettings, *, gale_count: int, net_profit: Decimal) -> Decimal:
    """The next trade's stake: the ladder's, cut to the cap and the loss budget (0: none)."""
    stake = step_stake(settings, gale_count)
    if settings.max_trade_amount is not None:
        stake = min(stake, settings.max_trade_amount)
    return cents_down(min(stake, loss_budget(settings, net_profit)))


def next_gale_count(settings: GaleSettings, *, gale_count: int, result: str) -> int:
    """The step after a settled trade: a win resets, a draw stays, a loss climbs or resets."""
    if result == "win":
        return 0
    if result == "draw":
        return gale_count
    return gale_count + 1 if gale_count < settings.gale_limit else 0


def stop_reason(settings: GaleSettings, *, net_profit: Decimal) -> str | None:
    """ "stop_profit" or "stop_loss" when the run must stop now, else None."""
    if net_profit >= settings.stop_profit:
        return "stop_profit"
    if net_profit <= -settings.stop_loss:
        return "stop_loss"
    return None
