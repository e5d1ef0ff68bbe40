"""Type A, dynamic leverage: the account's leverage follows its Type A credit
(`bonuses.services.leverage`); a Super Admin may override it."""

from collections.abc import Collection
from decimal import Decimal

from bonuses.services.leverage import leverage_sync, leverage_sync_many
from campaigns.models import Campaign

from . import LEVERAGE_OVERRIDE, BonusKind, pro_rata_keeps, register


class TypeA(BonusKind):
    code = Campaign.BonusType.A
    actions = frozenset({LEVERAGE_OVERRIDE})
    report = "leverage"

    def withdrawal_keeps(self, *, bonus, amount: Decimal, balance_before: Decimal) -> Decimal:
        return pro_rata_keeps(bonus=bonus, amount=amount, balance_before=balance_before)

    def after_activation(self, *, logins: Collection[int], together: bool) -> None:
        if together:
            leverage_sync_many(logins=logins, reason="grant")
            return
        for login in sorted(logins):
            leverage_sync(login=login, reason="grant")

    def after_credit_change(
        self, *, login: int, actor, balance: Decimal | None, reason: str
    ) -> None:
        leverage_sync(login=login, actor=actor, balance=balance, reason=reason)


register(TypeA())
