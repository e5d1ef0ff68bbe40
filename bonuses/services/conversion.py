"""Type C conversion: each closed trade deal turns credit into balance, once.

`lots * convert_per_lot` (rounded down to cents, capped at what the bonus still holds) moves
from credit to balance as one operation of two writes, credit-out then balance-in; the
balance-in is never paid if the credit-out failed. A deal converts once per account: the
`Conversion` rows (unique per bonus and deal) are written in the same transaction, and a deal
already seen on the account converts nothing however often it arrives again.

Several active Type C bonuses share a deal's lots oldest first: lots that finish one bonus
go on to the next, so one lot is never counted twice. Only bonuses created before the deal
closed count it.
"""

from datetime import datetime
from decimal import ROUND_UP, Decimal

from django.utils import timezone

from bonuses.models import Bonus, Conversion, CreditIntent
from bonuses.types import bonus_kinds
from core.money import CENT, ZERO, cents_down

from .common import atomic_for, audit_bonus, bonus_state
from .ledger import intent_add, new_operation, operation_execute


def trade_deal_convert(
    *, login: int, deal_ticket: int, lots: Decimal, closed_at: datetime | None = None
) -> list[Conversion]:
    """Count a closed trade deal of `lots` against the account's Type C bonuses."""
    if isinstance(lots, float):
        raise TypeError("lots are never a float")
    left = Decimal(lots).quantize(CENT)
    if left <= 0:
        return []
    closed_at = closed_at or timezone.now()
    conversions: list[Conversion] = []
    converting = [kind.code for kind in bonus_kinds() if kind.converts]
    with atomic_for(login):
        if Conversion.objects.filter(bonus__login=login, deal_ticket=deal_ticket).exists():
            return []
        bonuses = (
            Bonus.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(
                login=login,
                bonus_type__in=converting,
                status=Bonus.Status.ACTIVE,
                created_at__lte=closed_at,
                credit_remaining__gt=0,
            )
            .order_by("pk")
        )
        for bonus in bonuses:
            if left <= 0:
                break
            per_lot = bonus.campaign.convert_per_lot
            if not per_lot or per_lot <= 0:
                continue
            lots_to_finish = (bonus.credit_remaining / per_lot).quantize(CENT, rounding=ROUND_UP)
            used = min(left, lots_to_finish)
            amount = min(cents_down(used * per_lot), bonus.credit_remaining)
            if amount <= 0:
                continue
            left -= used
            conversions.append(_convert(bonus, deal_ticket, used, amount))
    for conversion in conversions:
        operation_execute(conversion.operation)
    return conversions


def _convert(bonus: Bonus, deal_ticket: int, lots: Decimal, amount: Decimal) -> Conversion:
    operation = new_operation()
    conversion = Conversion.objects.create(
        bonus=bonus, deal_ticket=deal_ticket, lots=lots, amount=amount, operation=operation
    )
    for kind in (CreditIntent.Kind.CREDIT_OUT, CreditIntent.Kind.BALANCE_IN):
        intent_add(
            login=bonus.login,
            kind=kind,
            operation=operation,
            bonus=bonus,
            amount=amount,
            reason="conversion",
        )
    before = bonus_state(bonus)
    bonus.credit_remaining -= amount
    bonus.converted_amount += amount
    bonus.lots_traded += lots
    fields = ["credit_remaining", "converted_amount", "lots_traded", "updated_at"]
    if bonus.credit_remaining <= 0:
        bonus.credit_remaining = ZERO
        bonus.status = Bonus.Status.CONVERTED
        bonus.ended_at = timezone.now()
        fields += ["status", "ended_at"]
    bonus.save(update_fields=fields)
    audit_bonus(
        verb="converted" if bonus.status == Bonus.Status.CONVERTED else "lots_converted",
        bonus=bonus,
        before=before,
        reason=f"deal {deal_ticket}: {lots} lots -> {amount}",
        extra={"deal_ticket": deal_ticket, "lots": lots, "amount": amount},
    )
    return conversion
