"""Deposits that justify credit: a deal read from the MT5 server, never an amount on trust.

A manual assign or a trigger that names a deposit names a deal (`deal_id`): it must be on the
MT5 server, on that login, a BALANCE deal with a positive amount (a deposit), and not one of
the engine's own conversion payouts (a balance-in carrying an op id). A deposit amount given
as well must equal the deal's. A trigger that gives only an amount is matched to a real
deposit of exactly that amount on the account within `BONUS_DEPOSIT_MATCH_DAYS`; none: 400.

The look-ups are network calls: never make them inside a transaction.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from bonuses.models import Bonus, BonusApproval, DepositSeen
from bonuses.selectors import operation_comments
from core.errors import ApplicationError, ConflictError
from gateways.mt5 import DealAction, MT5Deal, get_mt5_gateway


class DealError(ApplicationError):
    """400: the deal named (or the deposit claimed) is not a real deposit on that account."""


def deposit_deal_verify(*, login: int, deal_id: int, amount: Decimal | None = None) -> MT5Deal:
    """The deposit deal `deal_id` of `login` as MT5 shows it; with `amount`, it must match.

    400 `deal_not_found` (no such deal on this login), `deal_not_deposit` (not a positive
    balance deal, or the engine's own payout), `deposit_mismatch` (another amount).
    """
    login, deal_id = int(login), int(deal_id)
    if deal_id < 1:
        raise DealError(f"No deal {deal_id} on MT5 account {login}.", code="deal_not_found")
    # The Protocol reads deals after a cursor: the cursor just below the ticket starts there.
    deals = get_mt5_gateway().get_deals(cursors={login: deal_id - 1})
    deal = next((d for d in deals if d.ticket == deal_id and d.login == login), None)
    if deal is None:
        raise DealError(f"No deal {deal_id} on MT5 account {login}.", code="deal_not_found")
    _check_deposit(deal)
    if amount is not None and Decimal(amount) != deal.profit:
        raise DealError(
            f"Deal {deal_id} deposited {deal.profit}, not {amount}.", code="deposit_mismatch"
        )
    return deal


def deposit_deal_match(*, login: int, amount: Decimal) -> MT5Deal:
    """The deposit of exactly `amount` on `login` a caller without a deal id means.

    The newest such deposit within `BONUS_DEPOSIT_MATCH_DAYS` that the engine has not taken
    in yet, else the newest one taken in (so a repeated call answers what the first granted).
    None on the server: 400 `deal_not_found`.
    """
    login = int(login)
    since = timezone.now() - timedelta(days=settings.BONUS_DEPOSIT_MATCH_DAYS)
    deals = get_mt5_gateway().get_deals(cursors={login: 0}, since=since)
    candidates = [
        deal
        for deal in deals
        if deal.login == login
        and deal.action == DealAction.BALANCE
        and deal.profit == Decimal(amount)
    ]
    own = operation_comments(comments=[deal.comment for deal in candidates])
    candidates = [deal for deal in candidates if deal.comment not in own]
    if not candidates:
        raise DealError(
            f"No deposit of {amount} on MT5 account {login} in the last "
            f"{settings.BONUS_DEPOSIT_MATCH_DAYS} days: name its deal_id.",
            code="deal_not_found",
        )
    seen = set(
        DepositSeen.objects.filter(
            login=login, deal_id__in=[deal.ticket for deal in candidates]
        ).values_list("deal_id", flat=True)
    )
    fresh = [deal for deal in candidates if deal.ticket not in seen]
    return max(fresh or candidates, key=lambda deal: deal.ticket)


def deal_check_unused(
    *, campaign_id: int, login: int, deal_id: int, approval_id: int | None = None
) -> None:
    """409 `deal_already_used` if the deal already gave a bonus of this campaign, or waits
    for approval in another request. Call it under the account's lock."""
    used = (
        Bonus.objects.filter(campaign_id=campaign_id, login=login, deposit_deal_id=deal_id)
        .exclude(status=Bonus.Status.FAILED)
        .values_list("pk", flat=True)
        .first()
    )
    if used is not None:
        raise ConflictError(
            f"Deal {deal_id} already gave bonus #{used} of this campaign.",
            code="deal_already_used",
        )
    waiting = BonusApproval.objects.filter(
        campaign_id=campaign_id, login=login, deal_id=deal_id, status=BonusApproval.Status.PENDING
    ).exclude(pk=approval_id)  # type: ignore[misc]  # pk=None: excludes nothing
    pending = waiting.values_list("pk", flat=True).first()
    if pending is not None:
        raise ConflictError(
            f"Deal {deal_id} is already asked for in approval #{pending}.",
            code="deal_already_used",
        )


def _check_deposit(deal: MT5Deal) -> None:
    if deal.action != DealAction.BALANCE or deal.profit <= 0:
        raise DealError(
            f"Deal {deal.ticket} is not a deposit ({deal.action}, {deal.profit}).",
            code="deal_not_deposit",
        )
    if operation_comments(comments=[deal.comment]):
        raise DealError(
            f"Deal {deal.ticket} is a payout of the bonus engine, not a deposit.",
            code="deal_not_deposit",
        )
