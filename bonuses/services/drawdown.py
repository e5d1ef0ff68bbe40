"""Whether drawdown protection applies: what the account had at stake, read from MT5.

Equity at or under the credit means the account's own money (balance plus floating profit) is
gone. That is a loss to protect against only for a client who had money of their own there,
or who has been trading on the bonus. A new account whose whole equity *is* the bonus (a
registration or other no-deposit bonus on a zero balance) sits at equity = credit from the
moment the credit lands, and has lost nothing.

The rule (docs/bonuses.md, "Drawdown"): protection fires when equity <= credit (credit > 0),
the system holds active bonuses on the account, and

- **own funds existed**: the balance was above zero when the oldest active bonus was
  granted, or a client deposit arrived since; or
- **trading happened**: a position is open now, or a trade deal (buy or sell, opening or
  closing) was made since that grant.

Everything comes from MT5: the open positions, and the deals after the oldest active grant's
own credit deal. The balance at the grant is the balance now less every non-credit deal since
(MT5's balance is the sum of its balance-moving deals), so nothing extra is stored.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from bonuses.models import Bonus, CreditIntent
from bonuses.selectors import operation_comments
from gateways.mt5 import DealAction, MT5Account, get_mt5_gateway

TRADE_ACTIONS = frozenset({DealAction.BUY, DealAction.SELL})


@dataclass(frozen=True)
class DrawdownStake:
    """What an account in drawdown had at stake; `protected` says whether protection fires."""

    open_positions: int
    balance_at_grant: Decimal | None = None
    deposited_since: bool = False
    traded_since: bool = False

    @property
    def own_funds(self) -> bool:
        at_grant = self.balance_at_grant is not None and self.balance_at_grant > 0
        return at_grant or self.deposited_since

    @property
    def traded(self) -> bool:
        return self.open_positions > 0 or self.traded_since

    @property
    def protected(self) -> bool:
        return self.own_funds or self.traded

    def describe(self) -> str:
        """Why protection fires or not, in a sentence staff read in the audit trail."""
        if self.open_positions:
            return f"{self.open_positions} open position(s)"
        funds = (
            "own funds"
            if self.own_funds
            else f"no own funds (balance {self.balance_at_grant} at the grant, no deposit since)"
        )
        trading = "trading since the grant" if self.traded_since else "no trading since the grant"
        return f"{funds}, {trading}"


def drawdown_stake(*, login: int, account: MT5Account, bonuses: list[Bonus]) -> DrawdownStake:
    """Read from MT5 what `login` had at stake since the oldest of its active `bonuses`.

    Network calls, outside any transaction: one for the positions, and only when none is open
    one for the deals since the oldest grant's credit deal. Gateway errors propagate (the
    drawdown event stays pending and is retried).
    """
    gateway = get_mt5_gateway()
    positions = gateway.get_positions([login])
    if positions:
        return DrawdownStake(open_positions=len(positions))
    grant_deals = CreditIntent.objects.filter(
        bonus__in=bonuses,
        kind=CreditIntent.Kind.CREDIT_IN,
        status=CreditIntent.Status.DONE,
        deal_id__isnull=False,
    ).values_list("deal_id", flat=True)
    first_deal = min(cast("Iterable[int]", grant_deals), default=None)  # deal_id__isnull=False
    if first_deal is not None:
        deals = gateway.get_deals(cursors={login: first_deal})
    else:
        # An active bonus always has its confirmed credit deal; without one, the deals since
        # the oldest grant's time tell the same story a little less exactly.
        oldest = min(bonus.created_at for bonus in bonuses)
        deals = gateway.get_deals(cursors={login: 0}, since=oldest)
    deals = [deal for deal in deals if deal.login == login]
    own = operation_comments(comments={deal.comment for deal in deals if deal.comment})
    moved = sum((deal.profit for deal in deals if deal.action != DealAction.CREDIT), Decimal(0))
    return DrawdownStake(
        open_positions=0,
        balance_at_grant=account.balance - moved,
        deposited_since=any(
            deal.action == DealAction.BALANCE and deal.profit > 0 and deal.comment not in own
            for deal in deals
        ),
        traded_since=any(deal.action in TRADE_ACTIONS for deal in deals),
    )
