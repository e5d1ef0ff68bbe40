"""Bonus types as a registry: each type is one module here that registers one `BonusKind`.

A type decides, for its bonuses, what the engine does not decide for all of them: its amount
(if it differs from the common rule), its derived fields (Type C's lots required), how much of
its credit a withdrawal takes, what follows its activation and any later change of its credit
(Type A's leverage), whether it converts, the actions only it has, and the report that lists
it. Nothing else in the engine asks "is this Type A?": it asks the type.

`bonus_kind(code)` loads every module of this package once (each registers itself), then
answers; a code nobody registered raises `UnknownBonusType`, never a silent default. Every
`Campaign.BonusType` value must have its module, or the first lookup raises. The recipe for a
new type is in docs/bonuses.md.
"""

import importlib
import pkgutil
import threading
from collections.abc import Collection
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from campaigns.models import Campaign
from core.money import ZERO, cents_down

if TYPE_CHECKING:
    from bonuses.models import Bonus

# The actions only some types have (`BonusKind.actions`).
FORCE_CONVERT = "force_convert"
LEVERAGE_OVERRIDE = "leverage_override"


class UnknownBonusType(LookupError):
    """A bonus type no module under `bonuses/types/` registered."""


class BonusKind:
    """What one bonus type decides. A subclass must declare `code`, `withdrawal_keeps`,
    `after_activation` and `after_credit_change`; the rest has a common default."""

    code: ClassVar[str]
    # The actions only this type allows (FORCE_CONVERT, LEVERAGE_OVERRIDE).
    actions: ClassVar[frozenset[str]] = frozenset()
    # Trading converts its credit into balance (`trade_deal_convert`); its progress is shown.
    converts: ClassVar[bool] = False
    # The name of the report (`bonuses.reports.REPORTS`) that lists this type's bonuses.
    report: ClassVar[str | None] = None

    def amount(self, *, campaign: Campaign, deposit_amount: Decimal | None) -> Decimal:
        """Registration: the fixed amount; otherwise deposit * percentage / 100. Capped at
        max_bonus, rounded down to cents; no deposit gives 0."""
        if campaign.trigger_type == Campaign.TriggerType.REGISTRATION:
            amount = campaign.fixed_amount or ZERO
        elif deposit_amount is None:
            amount = ZERO
        else:
            amount = Decimal(deposit_amount) * campaign.percentage / 100
        if campaign.max_bonus is not None:
            amount = min(amount, campaign.max_bonus)
        return max(cents_down(amount), ZERO)

    def lots_required(self, *, campaign: Campaign, amount: Decimal) -> Decimal | None:
        """The lots to trade to convert the whole amount; None for a type that does not."""
        return None

    def withdrawal_keeps(
        self, *, bonus: "Bonus", amount: Decimal, balance_before: Decimal
    ) -> Decimal:
        """The credit the bonus keeps after a withdrawal of `amount` (< `balance_before`)."""
        raise NotImplementedError

    def after_activation(self, *, logins: Collection[int], together: bool) -> None:
        """What follows the credit of these accounts' bonuses of this type being confirmed
        (after commit). `together`: a batch of grants, to be handled in few queries."""
        raise NotImplementedError

    def after_credit_change(
        self, *, login: int, actor, balance: Decimal | None, reason: str
    ) -> None:
        """What follows a cancel, expiry, withdrawal or drawdown of this type's bonuses on
        the account (after commit); `balance` is the balance after it, if known."""
        raise NotImplementedError

    def allows(self, action: str) -> bool:
        return action in self.actions


def pro_rata_keeps(*, bonus: "Bonus", amount: Decimal, balance_before: Decimal) -> Decimal:
    """The withdrawal rule of A and B: keep `credit * (balance_before - amount) /
    balance_before`, rounded down to the cent (the fraction of a cent goes to the broker)."""
    # Multiplied before divided: one rounding, far below a cent.
    return cents_down(bonus.credit_remaining * (balance_before - amount) / balance_before)


_KINDS: dict[str, BonusKind] = {}
_loaded = False
_loading = threading.Lock()


def register(kind: BonusKind) -> BonusKind:
    """Add a type (its module calls this once); a code registered twice raises."""
    if kind.code in _KINDS and _KINDS[kind.code] is not kind:
        raise ValueError(f"bonus type {kind.code!r} is registered already")
    _KINDS[kind.code] = kind
    return kind


def unregister(code: str) -> None:
    """Remove a type (for tests that register one of their own)."""
    _KINDS.pop(code, None)


def bonus_kind(code: str) -> BonusKind:
    """The registered type of this code; `UnknownBonusType` if none is."""
    _load()
    try:
        return _KINDS[code]
    except KeyError:
        raise UnknownBonusType(
            f"bonus type {code!r} is not registered (registered: {', '.join(sorted(_KINDS))}); "
            "a type is a module under bonuses/types/ (docs/bonuses.md)"
        ) from None


def bonus_kinds() -> list[BonusKind]:
    """Every registered type, by code."""
    _load()
    return [_KINDS[code] for code in sorted(_KINDS)]


def _load() -> None:
    """Import every module of this package once: each registers its type."""
    global _loaded
    if _loaded:
        return
    with _loading:
        if _loaded:
            return
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")
        missing = sorted(set(Campaign.BonusType.values) - set(_KINDS))
        if missing:
            raise UnknownBonusType(f"no module under bonuses/types/ registers {missing}")
        _loaded = True
