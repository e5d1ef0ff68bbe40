"""Ending and shrinking bonuses: cancel, expiry, force-convert, withdrawal, drawdown.

Drawdown protection fires only on an account that had own funds or has traded (the rule is
in `drawdown.py` and docs/bonuses.md).

Each is one short transaction under the account's lock that changes the bonuses, records
the credit-out (and balance-in) intents and the audit events; the writes go to the server
after the commit, and Type A leverage is brought in line afterwards. A bonus gives back only
the credit it holds (`credit_remaining`), which only its own confirmed credit-in put there:
credit the system did not grant is never touched. A credit-out larger than what the server
still holds is cut to the server's credit (see the ledger).
"""

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from bonuses.models import Bonus, CreditIntent, WithdrawalSeen
from bonuses.types import FORCE_CONVERT, bonus_kind
from core.errors import ApplicationError, ConflictError
from core.money import ZERO

from .common import atomic_for, audit_bonus, bonus_state, logger, read_account, try_read_account
from .drawdown import drawdown_stake
from .ledger import intent_add, new_operation, operation_execute

EXPIRY_BATCH = 500


def bonus_cancel(*, bonus: Bonus, reason: str = "", actor=None) -> Bonus:
    """Cancel an active bonus: its credit removed, Type A leverage recomputed."""
    account = try_read_account(bonus.login)
    operation = new_operation()
    with atomic_for(bonus.login):
        locked = _active_for_update(bonus.login, pks=[bonus.pk])
        if not locked:
            raise _not_active(bonus)
        _end(
            locked[0],
            status=Bonus.Status.CANCELLED,
            cancel_reason=reason.strip()[:200] or "manual",
            intent_reason="cancel",
            verb="cancelled",
            operation=operation,
            actor=actor,
            account=account,
            audit_reason=reason,
        )
    _settle(bonus.login, operation, [bonus], actor=actor, reason="bonus cancelled")
    return bonus


def bonus_force_convert(*, bonus: Bonus, actor=None) -> Bonus:
    """Type C: turn all the credit it still holds into balance now."""
    if not bonus_kind(bonus.bonus_type).allows(FORCE_CONVERT):
        raise ConflictError("Only a Type C bonus converts.", code="not_type_c")
    account = try_read_account(bonus.login)
    operation = new_operation()
    with atomic_for(bonus.login):
        locked = _active_for_update(bonus.login, pks=[bonus.pk])
        if not locked:
            raise _not_active(bonus)
        current = locked[0]
        before = bonus_state(current)
        amount = current.credit_remaining
        if amount > 0:
            for kind in (CreditIntent.Kind.CREDIT_OUT, CreditIntent.Kind.BALANCE_IN):
                intent_add(
                    login=current.login,
                    kind=kind,
                    operation=operation,
                    bonus=current,
                    amount=amount,
                    reason="force_convert",
                )
        current.converted_amount += amount
        current.credit_remaining = ZERO
        current.status = Bonus.Status.CONVERTED
        current.ended_at = timezone.now()
        current.save(
            update_fields=[
                "converted_amount",
                "credit_remaining",
                "status",
                "ended_at",
                "updated_at",
            ]
        )
        audit_bonus(
            verb="force_converted",
            bonus=current,
            before=before,
            actor=actor,
            account=account,
            reason=f"{amount} converted to balance by hand",
        )
    operation_execute(operation)
    bonus.refresh_from_db()
    return bonus


def bonuses_expire_due(*, now: datetime | None = None) -> int:
    """Expire active bonuses past `expires_at` (beat, hourly); return how many expired."""
    now = now or timezone.now()
    due = (
        Bonus.objects.filter(status=Bonus.Status.ACTIVE, expires_at__lte=now)
        .order_by("pk")
        .values_list("pk", "login")[:EXPIRY_BATCH]
    )
    by_login: dict[int, list[int]] = defaultdict(list)
    for pk, login in due:
        by_login[login].append(pk)
    expired = 0
    for login, pks in by_login.items():
        try:
            expired += _expire_account(login, pks, now)
        except Exception:
            # One account's trouble must not stop the others; the next run retries it.
            logger.exception("expiring bonuses %s of %s failed", pks, login)
    return expired


def withdrawal_apply(
    *,
    login: int,
    amount: Decimal,
    balance_before: Decimal,
    deal_id: int | None = None,
    actor=None,
) -> list[Bonus]:
    """A withdrawal of `amount` from `balance_before`: f = amount / balance_before.

    Each active bonus keeps what its type's rule says (`withdrawal_keeps`: A and B keep
    `credit_remaining * (1 - f)` rounded down to cents, the broker's side getting the cent;
    Type C loses all unconverted credit); one that keeps nothing is cancelled. f >= 1
    cancels every bonus. Idempotent on `deal_id`: a deal seen again changes nothing and
    returns []. Returns the bonuses changed.
    """
    amount, balance_before = _money(amount), _money(balance_before)
    if amount <= 0:
        raise ApplicationError("The withdrawal must be positive.", code="invalid_amount")
    fraction = amount / balance_before if balance_before > 0 else Decimal(1)
    account = try_read_account(login)
    operation = new_operation()
    changed: list[Bonus] = []
    with atomic_for(login):
        if deal_id is not None and not _first_withdrawal(login, deal_id, amount, balance_before):
            return []
        for bonus in _active_for_update(login):
            keep = ZERO
            if fraction < 1:
                keep = bonus_kind(bonus.bonus_type).withdrawal_keeps(
                    bonus=bonus, amount=amount, balance_before=balance_before
                )
            if keep <= 0:
                _end(
                    bonus,
                    status=Bonus.Status.CANCELLED,
                    cancel_reason="withdrawal",
                    intent_reason="withdrawal",
                    verb="cancelled",
                    operation=operation,
                    actor=actor,
                    account=account,
                    audit_reason=f"withdrawal of {amount} from {balance_before}",
                )
            elif keep < bonus.credit_remaining:
                _reduce(bonus, keep, amount, balance_before, operation, actor, account)
            else:
                continue
            changed.append(bonus)
    _settle(
        login, operation, changed, actor=actor, reason="withdrawal", balance=balance_before - amount
    )
    return changed


def drawdown_apply(*, login: int, actor=None) -> list[Bonus]:
    """Equity <= credit (credit > 0) while the system's bonuses are active, on an account
    that had own funds or has traded (`drawdown_stake`): close every position, cancel those
    bonuses and remove the credit they hold. At the line with nothing of its own ever at
    stake (a no-deposit bonus before any trading): audited `bonus.drawdown_skipped`, nothing
    else. Anything else: no-op.

    The close goes first; the credit-outs follow it, and whatever the server does not settle
    now stays open in the ledger for `intents_resolve` to finish.
    """
    account = read_account(login)
    if account is None or account.credit <= 0 or account.equity > account.credit:
        return []
    held = list(Bonus.objects.filter(login=login, status=Bonus.Status.ACTIVE).order_by("pk"))
    if not held:
        return []  # the credit there is not ours: leave the account alone
    stake = drawdown_stake(login=login, account=account, bonuses=held)
    line = f"equity {account.equity} <= credit {account.credit}"
    if not stake.protected:
        _drawdown_skip(login, held, account=account, reason=f"{line}, but {stake.describe()}")
        return []
    operation = new_operation()
    with atomic_for(login):
        bonuses = _active_for_update(login)
        if not bonuses:
            return []
        intent_add(
            login=login,
            kind=CreditIntent.Kind.CLOSE_POSITIONS,
            operation=operation,
            reason="drawdown",
        )
        for bonus in bonuses:
            _end(
                bonus,
                status=Bonus.Status.CANCELLED,
                cancel_reason="drawdown",
                intent_reason="drawdown",
                verb="cancelled",
                operation=operation,
                actor=actor,
                account=account,
                audit_reason=f"drawdown: {line}; {stake.describe()}",
            )
    _settle(login, operation, bonuses, actor=actor, reason="drawdown")
    return bonuses


# --- Internals -------------------------------------------------------------------------------


def _drawdown_skip(login: int, held: list[Bonus], *, account, reason: str) -> None:
    """Say on each bonus's trail why a drawdown left it alone (once per fall to the line)."""
    logger.info("drawdown on %s not applied: %s", login, reason)
    with atomic_for(login):
        for bonus in _active_for_update(login, pks=[bonus.pk for bonus in held]):
            audit_bonus(
                verb="drawdown_skipped",
                bonus=bonus,
                before=None,
                account=account,
                reason=reason,
            )


def _expire_account(login: int, pks: list[int], now: datetime) -> int:
    account = try_read_account(login)
    operation = new_operation()
    with atomic_for(login):
        bonuses = [
            bonus
            for bonus in _active_for_update(login, pks=pks)
            if bonus.expires_at is not None and bonus.expires_at <= now
        ]
        for bonus in bonuses:
            expires_at = bonus.expires_at
            assert expires_at is not None  # kept above only with one
            _end(
                bonus,
                status=Bonus.Status.EXPIRED,
                cancel_reason="expired",
                intent_reason="expiry",
                verb="expired",
                operation=operation,
                actor=None,
                account=account,
                audit_reason=f"expired at {expires_at.isoformat()}",
            )
    _settle(login, operation, bonuses, actor=None, reason="bonus expired")
    return len(bonuses)


def _settle(
    login: int,
    operation,
    bonuses: list[Bonus],
    *,
    actor,
    reason: str,
    balance: Decimal | None = None,
) -> None:
    """After commit: send the operation's writes, tell each type of these bonuses (Type A's
    leverage follows), reload the rows."""
    operation_execute(operation)
    for bonus_type in sorted({bonus.bonus_type for bonus in bonuses}):
        bonus_kind(bonus_type).after_credit_change(
            login=login, actor=actor, balance=balance, reason=reason
        )
    for bonus in bonuses:
        bonus.refresh_from_db()


def _active_for_update(login: int, pks: list[int] | None = None) -> list[Bonus]:
    """The account's active bonuses, row-locked in primary-key order."""
    rows = Bonus.objects.select_for_update().filter(login=login, status=Bonus.Status.ACTIVE)
    if pks is not None:
        rows = rows.filter(pk__in=pks)
    return list(rows.order_by("pk"))


def _end(
    bonus: Bonus,
    *,
    status: str,
    cancel_reason: str,
    intent_reason: str,
    verb: str,
    operation,
    actor,
    account,
    audit_reason: str,
) -> None:
    before = bonus_state(bonus)
    if bonus.credit_remaining > 0:
        intent_add(
            login=bonus.login,
            kind=CreditIntent.Kind.CREDIT_OUT,
            operation=operation,
            bonus=bonus,
            amount=bonus.credit_remaining,
            reason=intent_reason,
        )
    bonus.status = status
    bonus.credit_remaining = ZERO
    bonus.cancel_reason = cancel_reason
    bonus.ended_at = timezone.now()
    bonus.save(
        update_fields=["status", "credit_remaining", "cancel_reason", "ended_at", "updated_at"]
    )
    audit_bonus(
        verb=verb,
        bonus=bonus,
        before=before,
        actor=actor,
        account=account,
        reason=audit_reason,
        extra={"credit_removed": before["credit_remaining"]},
    )


def _reduce(bonus, keep, amount, balance_before, operation, actor, account) -> None:
    before = bonus_state(bonus)
    removed = bonus.credit_remaining - keep
    intent_add(
        login=bonus.login,
        kind=CreditIntent.Kind.CREDIT_OUT,
        operation=operation,
        bonus=bonus,
        amount=removed,
        reason="withdrawal",
    )
    bonus.credit_remaining = keep
    bonus.save(update_fields=["credit_remaining", "updated_at"])
    audit_bonus(
        verb="reduced",
        bonus=bonus,
        before=before,
        actor=actor,
        account=account,
        reason=f"withdrawal of {amount} from {balance_before}",
        extra={"credit_removed": removed},
    )


def _first_withdrawal(login: int, deal_id: int, amount: Decimal, balance_before: Decimal) -> bool:
    if WithdrawalSeen.objects.filter(login=login, deal_id=deal_id).exists():
        return False
    try:
        with transaction.atomic():
            WithdrawalSeen.objects.create(
                login=login, deal_id=deal_id, amount=amount, balance_before=balance_before
            )
    except IntegrityError:
        return False
    return True


def _not_active(bonus: Bonus) -> ConflictError:
    status = Bonus.objects.filter(pk=bonus.pk).values_list("status", flat=True).first()
    return ConflictError(f"The bonus is {status}, not active.", code="bonus_not_active")


def _money(value) -> Decimal:
    if isinstance(value, float):
        raise TypeError("money is never a float")
    return Decimal(value).quantize(Decimal("0.01"))
