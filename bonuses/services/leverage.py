"""Type A's leverage stack: one `LeverageState` per account, the leverage following its credit.

The rule (`leverage_target`):

- An override (Super Admin) wins while the stack lasts.
- One active Type A bonus still holding its whole amount, granted on a deposit: the
  contract's grant formula, `floor(original / ((percentage / 100) + 1))`.
- Otherwise (several Type A bonuses, or one reduced by a withdrawal, or a fixed amount): the
  credit ratio, `floor(original / ((total Type A credit / balance) + 1))`, balance as the
  server shows it (after a withdrawal: `balance_before - withdrawal`); balance <= 0 gives 1.
- Never below 1. No Type A credit left: the original is restored, unless the server no
  longer shows a leverage we set (a dealer changed it): then it is left alone and audited.

The leverage changes only once a bonus is active (its credit confirmed), so a refused
credit never leaves a reduced leverage behind.
"""

from decimal import ROUND_FLOOR, Decimal

from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record, audit_record_many
from bonuses.models import Bonus, CreditIntent, LeverageState
from bonuses.types import LEVERAGE_OVERRIDE, bonus_kind
from campaigns.models import Campaign
from core.errors import ApplicationError, ConflictError
from gateways.errors import GatewayError
from gateways.mt5 import MT5Account, get_mt5_gateway

from .common import (
    ACCOUNTS_PER_TRANSACTION,
    atomic_for,
    audit_bonus,
    bonus_event,
    bonus_state,
    lock_accounts,
    logger,
    read_account,
    try_read_account,
)
from .ledger import (
    OPEN,
    intent_add,
    intent_build,
    new_operation,
    operation_execute,
    operations_execute_many,
)

# The stack this module keeps is Type A's (bonuses/types/a.py calls it).
TYPE_A = Campaign.BonusType.A


def leverage_target(
    *, original: int, override: int | None, bonuses: list[Bonus], balance: Decimal
) -> int:
    """The leverage an account with these active Type A bonuses should have (see module)."""
    if override:
        return int(override)
    if len(bonuses) == 1:
        bonus = bonuses[0]
        if (
            bonus.credit_remaining == bonus.amount
            and bonus.deposit_amount is not None
            and bonus.trigger != Bonus.Trigger.REGISTRATION
        ):
            return _floor_at_least_one(Decimal(original) / (bonus.campaign.percentage / 100 + 1))
    credit = sum((bonus.credit_remaining for bonus in bonuses), Decimal(0))
    if balance <= 0:
        return 1
    return _floor_at_least_one(Decimal(original) / (credit / balance + 1))


def leverage_sync(
    *, login: int, actor=None, balance: Decimal | None = None, reason: str = ""
) -> int | None:
    """Set the leverage its Type A bonuses call for, or restore it; return what was asked.

    Reads the account first (outside any transaction). If the server cannot be read, nothing
    changes now and the next event on the account brings the leverage in line.
    """
    try:
        account = read_account(login)
    except GatewayError as exc:
        logger.warning("leverage of %s not synced (%s): server unreadable", login, exc)
        return None
    if account is None:
        return None
    balance = account.balance if balance is None else Decimal(balance)
    operation = new_operation()
    with atomic_for(login):
        state = LeverageState.objects.select_for_update().filter(login=login).first()
        bonuses = _stacks_locked([login]).get(login, [])
        if not bonuses:
            if state is None:
                return None
            target = _restore(state, account, operation, actor, reason)
        else:
            if state is None:
                original = _original_leverage(login, account)
                state = LeverageState.objects.create(
                    login=login, original_leverage=original, applied_leverage=account.leverage
                )
            target = leverage_target(
                original=state.original_leverage,
                override=state.override_leverage,
                bonuses=bonuses,
                balance=balance,
            )
            for bonus in bonuses:
                _record_on_bonus(bonus, state.original_leverage, target, account, actor, reason)
            if account.leverage != target or _open_leverage_writes(login):
                intent_add(
                    login=login,
                    kind=CreditIntent.Kind.SET_LEVERAGE,
                    operation=operation,
                    leverage=target,
                    reason="leverage",
                )
    operation_execute(operation)
    return target


def leverage_sync_many(*, logins, reason: str = "") -> None:
    """`leverage_sync` for many accounts (a batch of grants): their accounts read in one
    gateway call, their stacks in one transaction under all their locks, the writes sent
    together (`operations_execute_many`). An account left without Type A credit meanwhile
    (a restore) goes through `leverage_sync` on its own."""
    logins = sorted({int(login) for login in logins})
    if not logins:
        return
    try:
        accounts = get_mt5_gateway().get_accounts(logins)
    except GatewayError as exc:
        logger.warning(
            "leverage of %s accounts not synced (%s): server unreadable", len(logins), exc
        )
        return
    operations: list = []
    alone: list[int] = []
    error: Exception | None = None
    for start in range(0, len(logins), ACCOUNTS_PER_TRANSACTION):
        part = logins[start : start + ACCOUNTS_PER_TRANSACTION]
        try:
            _stacks_adjust(part, accounts, reason, operations, alone)
        except Exception as exc:
            # Rolled back as a whole: each of its accounts again on its own, so that one bad
            # account does not leave the others at their full leverage with the credit on.
            logger.exception("leverage of %s accounts not synced together", len(part))
            error = error or exc
            alone.extend(login for login in part if login not in alone)
    operations_execute_many(operations)
    for login in alone:
        try:
            leverage_sync(login=login, reason=reason)
        except Exception as exc:
            logger.exception("leverage of %s not synced", login)
            error = error or exc
    if error is not None:
        raise error


def _stacks_adjust(logins, accounts, reason, operations, alone) -> None:
    """One transaction of `leverage_sync_many`: these accounts' stacks, their targets, the
    writes to send (their operations appended to `operations`); an account without Type A
    credit left goes to `alone`."""
    with transaction.atomic():
        lock_accounts(logins)
        states = {
            state.login: state
            for state in LeverageState.objects.select_for_update().filter(login__in=logins)
        }
        stacks = _stacks_locked(logins)
        open_writes = _open_leverage_writes_many(logins)
        new_states, changed, events, intents = [], [], [], []
        for login in logins:
            account = accounts.get(login)
            if account is None:
                continue
            bonuses = stacks.get(login)
            if not bonuses:
                alone.append(login)
                continue
            state = states.get(login)
            if state is None:
                restoring = [i for i in open_writes.get(login, []) if i.reason == "restore"]
                original = restoring[-1].leverage if restoring else account.leverage
                assert original is not None  # a leverage write carries its leverage
                state = LeverageState(
                    login=login, original_leverage=original, applied_leverage=account.leverage
                )
                new_states.append(state)
            target = leverage_target(
                original=state.original_leverage,
                override=state.override_leverage,
                bonuses=bonuses,
                balance=account.balance,
            )
            for bonus in bonuses:
                event = _adjusted(bonus, state.original_leverage, target, account, None, reason)
                if event is not None:
                    changed.append(bonus)
                    events.append(event)
            if account.leverage != target or open_writes.get(login):
                operation = new_operation()
                operations.append(operation)
                intents.append(
                    intent_build(
                        login=login,
                        kind=CreditIntent.Kind.SET_LEVERAGE,
                        operation=operation,
                        leverage=target,
                        reason="leverage",
                    )
                )
        LeverageState.objects.bulk_create(new_states)
        Bonus.objects.bulk_update(changed, ["original_leverage", "adjusted_leverage", "updated_at"])
        audit_record_many(events)
        CreditIntent.objects.bulk_create(intents)


def bonus_override_leverage(*, bonus: Bonus, leverage: int, actor=None) -> Bonus:
    """Set a Type A account's leverage by hand; it wins until no Type A credit remains."""
    if not bonus_kind(bonus.bonus_type).allows(LEVERAGE_OVERRIDE):
        raise ConflictError("Only a Type A bonus has a leverage to override.", code="not_type_a")
    if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
        raise ApplicationError(
            "Leverage must be an integer of at least 1.", code="invalid_leverage"
        )
    account = try_read_account(bonus.login)
    operation = new_operation()
    with atomic_for(bonus.login):
        bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
        if bonus.status != Bonus.Status.ACTIVE:
            raise ConflictError(f"The bonus is {bonus.status}.", code="bonus_not_active")
        state = LeverageState.objects.select_for_update().filter(login=bonus.login).first()
        if state is None:
            current = account.leverage if account else leverage
            original = bonus.original_leverage or current
            state = LeverageState.objects.create(
                login=bonus.login, original_leverage=original, applied_leverage=current
            )
        state.override_leverage = leverage
        state.save(update_fields=["override_leverage", "updated_at"])
        stack = Bonus.objects.select_for_update().filter(
            login=bonus.login, bonus_type=TYPE_A, status=Bonus.Status.ACTIVE
        )
        for member in stack.order_by("pk"):
            before = bonus_state(member)
            member.original_leverage = member.original_leverage or state.original_leverage
            member.adjusted_leverage = leverage
            member.save(update_fields=["original_leverage", "adjusted_leverage", "updated_at"])
            if member.pk == bonus.pk:
                audit_bonus(
                    verb="leverage_overridden",
                    bonus=member,
                    before=before,
                    actor=actor,
                    account=account,
                    reason=f"leverage set to 1:{leverage} by hand",
                )
        intent_add(
            login=bonus.login,
            kind=CreditIntent.Kind.SET_LEVERAGE,
            operation=operation,
            leverage=leverage,
            reason="override",
        )
    operation_execute(operation)
    bonus.refresh_from_db()
    return bonus


# --- Internals -------------------------------------------------------------------------------


def _restore(state, account: MT5Account, operation, actor, reason: str) -> int | None:
    """No Type A credit left: restore the original, unless a dealer changed the leverage."""
    login = state.login
    ours = {state.applied_leverage} | {intent.leverage for intent in _open_leverage_writes(login)}
    stack = Bonus.objects.filter(
        login=login, bonus_type=TYPE_A, original_leverage__isnull=False, leverage_restored_at=None
    )
    last = Bonus.objects.filter(login=login, bonus_type=TYPE_A).order_by("-pk").first()
    target = None
    if account.leverage in ours:
        target = state.original_leverage
        if account.leverage != target or len(ours) > 1:
            intent_add(
                login=login,
                kind=CreditIntent.Kind.SET_LEVERAGE,
                operation=operation,
                leverage=target,
                reason="restore",
            )
        stack.update(leverage_restored_at=timezone.now())
        if last is not None:
            audit_bonus(
                verb="leverage_restored",
                bonus=last,
                before=bonus_state(last),
                actor=actor,
                account=account,
                reason=reason or "no Type A credit left",
                extra={"leverage": {"from": account.leverage, "to": target}},
            )
    elif last is not None:
        audit_bonus(
            verb="leverage_left",
            bonus=last,
            before=bonus_state(last),
            actor=actor,
            account=account,
            reason=(
                f"the server shows 1:{account.leverage}, not the 1:{state.applied_leverage} we "
                f"set: changed by hand, so 1:{state.original_leverage} is not restored"
            ),
            extra={"leverage": {"expected": state.applied_leverage, "server": account.leverage}},
        )
    state.delete()
    return target


def _record_on_bonus(bonus: Bonus, original: int, target: int, account, actor, reason) -> None:
    event = _adjusted(bonus, original, target, account, actor, reason)
    if event is not None:
        bonus.save(update_fields=["original_leverage", "adjusted_leverage", "updated_at"])
        audit_record(**event)


def _adjusted(bonus: Bonus, original: int, target: int, account, actor, reason) -> dict | None:
    """Set the bonus's leverages to these (not saved); its `leverage_adjusted` event, or None
    if they were already so."""
    if bonus.original_leverage == original and bonus.adjusted_leverage == target:
        return None
    before = bonus_state(bonus)
    bonus.original_leverage = bonus.original_leverage or original
    bonus.adjusted_leverage = target
    bonus.updated_at = timezone.now()
    return bonus_event(
        verb="leverage_adjusted",
        bonus=bonus,
        before=before,
        actor=actor,
        account=account,
        reason=reason or "Type A credit changed",
    )


def _original_leverage(login: int, account: MT5Account) -> int:
    # A restore still in flight means the server does not show the original yet.
    restoring = (
        CreditIntent.objects.filter(
            login=login, kind=CreditIntent.Kind.SET_LEVERAGE, reason="restore", status__in=OPEN
        )
        .order_by("-pk")
        .first()
    )
    original = restoring.leverage if restoring is not None else account.leverage
    assert original is not None  # a leverage write carries its leverage
    return original


def _open_leverage_writes(login: int) -> list[CreditIntent]:
    return list(
        CreditIntent.objects.filter(
            login=login, kind=CreditIntent.Kind.SET_LEVERAGE, status__in=OPEN
        )
    )


def _stacks_locked(logins) -> dict[int, list[Bonus]]:
    """The active Type A bonuses still holding credit of these logins (their stacks), oldest
    first, locked for the caller's transaction."""
    stacks: dict[int, list[Bonus]] = {}
    rows = (
        Bonus.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .filter(
            login__in=list(logins),
            bonus_type=TYPE_A,
            status=Bonus.Status.ACTIVE,
            credit_remaining__gt=0,
        )
        .order_by("pk")
    )
    for bonus in rows:
        stacks.setdefault(bonus.login, []).append(bonus)
    return stacks


def _open_leverage_writes_many(logins) -> dict[int, list[CreditIntent]]:
    """`_open_leverage_writes` of many logins, oldest first."""
    writes: dict[int, list[CreditIntent]] = {}
    rows = CreditIntent.objects.filter(
        login__in=list(logins), kind=CreditIntent.Kind.SET_LEVERAGE, status__in=OPEN
    ).order_by("pk")
    for intent in rows:
        writes.setdefault(intent.login, []).append(intent)
    return writes


def _floor_at_least_one(value: Decimal) -> int:
    return max(1, int(value.to_integral_value(rounding=ROUND_FLOOR)))
