"""Type B, fixed leverage: plain credit, shrunk pro rata by withdrawals; nothing follows."""

from collections.abc import Collection
from decimal import Decimal

from campaigns.models import Campaign

from . import BonusKind, pro_rata_keeps, register


class TypeB(BonusKind):
    code = Campaign.BonusType.B

    def withdrawal_keeps(self, *, bonus, amount: Decimal, balance_before: Decimal) -> Decimal:
        return pro_rata_keeps(bonus=bonus, amount=amount, balance_before=balance_before)

    def after_activation(self, *, logins: Collection[int], together: bool) -> None:
        """The leverage is fixed: nothing follows."""

    def after_credit_change(
        self, *, login: int, actor, balance: Decimal | None, reason: str
    ) -> None:
        """The leverage is fixed: nothing follows."""


register(TypeB())
