"""Granting bonuses: manual assign and the deposit, registration and promo-code triggers.

A grant is, in one short transaction under the account's lock: the eligibility rules again
(so two grants at once cannot both pass `duplicate_bonus` or `max_concurrent`), a `pending`
bonus, its credit-in intent and the audit event. After the commit the credit is sent; the
bonus turns `active` when the server confirms it (then Type A adjusts the leverage), or
`failed` if the server refuses it. A zero amount grants nothing: there is no credit to post.

The monitor's deposits come many at once (`trigger_deposits`): the same rules, for up to 200
accounts a transaction, every account's lock held (taken in login order), each login's
bonuses read once and the bonuses planned in the batch counted; then all the credits are
sent together. Every trigger writes its bonuses through the same `_record_pending`.
"""

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import audit_record_many
from bonuses.models import Bonus, BonusApproval, CreditIntent, DepositSeen
from bonuses.types import bonus_kind
from campaigns.models import Campaign, StackingSkip
from core.errors import ApplicationError, ConflictError, NotFoundError
from core.money import CENT, ZERO
from gateways.mt5 import MT5Account, get_mt5_gateway

from .common import (
    ACCOUNTS_PER_TRANSACTION,
    atomic_for,
    bonus_event,
    live_campaigns,
    lock_account,
    lock_accounts,
    logger,
)
from .common import read_account as _read_account
from .deals import deal_check_unused, deposit_deal_match, deposit_deal_verify
from .eligibility import (
    IneligibleError,
    deal_bonuses_elsewhere,
    eligibility_failures,
    held_bonuses,
    normalized_codes,
)
from .ledger import intent_build, new_operation, operation_execute, operations_execute_many
from .limits import approval_request, manual_limit_excess, requester_lock


@dataclass(frozen=True)
class Deposit:
    """A deposit deal the engine is told of."""

    login: int
    amount: Decimal
    deal_id: int | None = None
    source: str = "monitor"


def bonus_amount(*, campaign: Campaign, deposit_amount: Decimal | None) -> Decimal:
    """The campaign's bonus on this deposit, by its type's rule (`BonusKind.amount`: the
    fixed amount for registration, else deposit * percentage / 100; capped at max_bonus,
    rounded down to cents; no deposit gives 0)."""
    return bonus_kind(campaign.bonus_type).amount(campaign=campaign, deposit_amount=deposit_amount)


def bonus_assign(
    *,
    login: int,
    campaign: Campaign,
    actor,
    deposit_amount: Decimal | None = None,
    deal_id: int | None = None,
    override_eligibility: bool = False,
    reason: str = "",
) -> Bonus | BonusApproval:
    """A staff member's manual grant, bounded by what really happened and by their role.

    A deposit is a real deal (`deal_id`, read from MT5; a `deposit_amount` must equal it:
    without a deal 400 `deal_required`), not used for this campaign yet (409
    `deal_already_used`). With override, only non-overridable failures block; ineligible:
    `IneligibleError` (409). Credit above the actor's limit (`BONUS_MANUAL_LIMITS`) is not
    granted but returned as a pending `BonusApproval` for another Super Admin.
    """
    if not getattr(actor, "pk", None):
        raise ValueError("a manual grant needs the person who asks for it")
    deposit_amount = _money_or_none(deposit_amount)
    if deposit_amount is not None and deal_id is None:
        raise ApplicationError(
            "A deposit amount must come with the deposit's MT5 deal (deal_id).",
            code="deal_required",
        )
    account = _read_account(login)
    if deal_id is not None and account is not None:
        deal = deposit_deal_verify(login=login, deal_id=deal_id, amount=deposit_amount)
        deposit_amount = deal.profit
    operation = new_operation()
    with transaction.atomic():
        requester_lock(user=actor)  # before the account's lock, always in this order
        lock_account(login)
        failures, amount = _checked_grant(
            login=login,
            account=account,
            campaign=campaign,
            deposit_amount=deposit_amount,
            deal_id=deal_id,
            override_eligibility=override_eligibility,
        )
        excess = manual_limit_excess(user=actor, amount=amount)
        if excess is not None:
            return approval_request(
                user=actor,
                login=login,
                campaign=campaign,
                amount=amount,
                deposit_amount=deposit_amount,
                deal_id=deal_id,
                override_eligibility=override_eligibility,
                reason=reason,
                limit_reason=excess,
            )
        bonus = _create_once(
            account=account,
            login=login,
            campaign=campaign,
            amount=amount,
            deposit_amount=deposit_amount,
            deal_id=deal_id,
            trigger=Bonus.Trigger.MANUAL,
            actor=actor,
            operation=operation,
            overridden=failures,
            override_reason=reason,
        )
    operation_execute(operation)
    bonus.refresh_from_db()
    return bonus


def approved_grant(
    *, approval: BonusApproval, account: MT5Account | None, actor
) -> tuple[Bonus, uuid.UUID]:
    """The grant of an approved request, re-checked now (in the caller's transaction, under
    the account's lock): the bonus and the operation to execute after the commit. The
    amount is what the approver saw, or less if the campaign now gives less."""
    failures, amount = _checked_grant(
        login=approval.login,
        account=account,
        campaign=approval.campaign,
        deposit_amount=approval.deposit_amount,
        deal_id=approval.deal_id,
        override_eligibility=approval.override_eligibility,
        approval_id=approval.pk,
    )
    operation = new_operation()
    reason = approval.reason or f"approval #{approval.pk}"
    bonus = _create_once(
        account=account,
        login=approval.login,
        campaign=approval.campaign,
        amount=min(amount, approval.amount),
        deposit_amount=approval.deposit_amount,
        deal_id=approval.deal_id,
        trigger=Bonus.Trigger.MANUAL,
        actor=approval.requested_by,
        operation=operation,
        overridden=failures,
        override_reason=reason,
        audit_actor=actor,
        audit_reason=f"approved request #{approval.pk}: {reason}",
    )
    return bonus, operation


def trigger_deposit(
    *,
    login: int,
    amount: Decimal,
    deal_id: int | None = None,
    actor=None,
    source: str = "api",
    deal_from_server: bool = False,
) -> list[Bonus]:
    """A deposit arrived: grant the matching campaigns (auto_deposit, and agent-code
    campaigns whose codes match the Lead Source), within the rules, in priority order: the
    first eligible one fires, and others join only while it and they are all stackable
    (`stacking_exclusive`; each campaign left out is a `StackingSkip`).

    The deposit must be real: unless the caller read the deal from MT5 itself (the monitor,
    `deal_from_server`), an unknown login is 404 `account_not_found`, a `deal_id` is checked
    on the server (`deposit_deal_verify`), and an amount without one is matched to a real
    deposit of that amount (`deposit_deal_match`). Idempotent on the deal: it is recorded
    first, and a deal seen again returns the bonuses its first arrival granted.
    """
    amount = _positive_money(amount)
    account = _read_account(login)
    if not deal_from_server:
        if account is None:
            raise NotFoundError(f"MT5 account {login} does not exist.", code="account_not_found")
        if deal_id is None:
            deal_id = deposit_deal_match(login=login, amount=amount).ticket
        else:
            deposit_deal_verify(login=login, deal_id=deal_id, amount=amount)
    deposit = Deposit(login=login, amount=amount, deal_id=deal_id, source=source)
    return _deposits_grant([deposit], {login: account} if account else {}, actor=actor)[0]


def trigger_deposits(deposits: Sequence[Deposit], *, actor=None) -> list[list[Bonus]]:
    """Many deposits the caller read from MT5 itself (the monitor's), granted together: the
    rules of `trigger_deposit` for each, in one transaction holding all their accounts'
    locks (taken in login order), then every credit sent at once (`operations_execute_many`).
    The accounts are read in one gateway call first. The bonuses of each deposit, in order;
    a deposit seen before gives the bonuses its first arrival granted."""
    deposits = [
        Deposit(
            login=int(d.login),
            amount=_positive_money(d.amount),
            deal_id=None if d.deal_id is None else int(d.deal_id),
            source=d.source,
        )
        for d in deposits
    ]
    if not deposits:
        return []
    accounts = get_mt5_gateway().get_accounts(sorted({d.login for d in deposits}))
    return _deposits_grant(deposits, accounts, actor=actor)


def trigger_registration(
    *, login: int, actor=None, account_from_server: bool = False
) -> list[Bonus]:
    """A new account: grant every live registration campaign's fixed amount, at most once
    per campaign and account (whatever one_per_account says). Unless the caller saw the
    account on MT5 itself (the monitor), an unknown login is 404 `account_not_found`."""
    account = _read_account(login)
    if account is None and not account_from_server:
        raise NotFoundError(f"MT5 account {login} does not exist.", code="account_not_found")
    granted: list[_Pending] = []
    with atomic_for(login):
        held = held_bonuses([login]).get(login, [])
        for campaign in live_campaigns([Campaign.TriggerType.REGISTRATION]):
            already = any(
                bonus.campaign_id == campaign.pk
                and bonus.trigger == Bonus.Trigger.REGISTRATION
                and bonus.status != Bonus.Status.FAILED
                for bonus in held
            )
            if already:
                continue
            pending = _grant_plan(
                account=account,
                login=login,
                campaign=campaign,
                deposit_amount=None,
                deal_id=None,
                trigger=Bonus.Trigger.REGISTRATION,
                actor=actor,
                held=held,
                skips=[],  # no deposit deal: nothing to stack on
            )
            if pending is not None:
                held.append(pending.bonus)  # the next campaign's rules see it
                granted.append(pending)
        _record_pending(granted)
    return _execute_grants([(pending.bonus, pending.operation) for pending in granted])


def trigger_promo_code(
    *,
    login: int,
    code: str,
    deposit_amount: Decimal | None = None,
    deal_id: int | None = None,
    actor=None,
) -> Bonus:
    """Redeem a promo code (case-insensitive). Unknown or not-active code: 400
    `invalid_promo_code`; ineligible: 409 with every failure. A deposit is a real deal, as
    for the deposit trigger: `deal_id` checked on MT5, or the amount matched to one; a deal
    gives one bonus per campaign (409 `deal_already_used`)."""
    code = (code or "").strip()
    campaign = (
        Campaign.objects.filter(promo_code__iexact=code, status=Campaign.Status.ACTIVE).first()
        if code
        else None
    )
    if campaign is None:
        raise ApplicationError("Unknown or inactive promo code.", code="invalid_promo_code")
    deposit_amount = _money_or_none(deposit_amount)
    account = _read_account(login)
    if account is not None and (deal_id is not None or deposit_amount is not None):
        if deal_id is None:
            assert deposit_amount is not None  # one of the two, by the condition above
            deal = deposit_deal_match(login=login, amount=deposit_amount)
        else:
            deal = deposit_deal_verify(login=login, deal_id=deal_id, amount=deposit_amount)
        deposit_amount, deal_id = deal.profit, deal.ticket
    operation = new_operation()
    with atomic_for(login):
        _failures, amount = _checked_grant(
            login=login,
            account=account,
            campaign=campaign,
            deposit_amount=deposit_amount,
            deal_id=deal_id,
            override_eligibility=False,
        )
        bonus = _create_once(
            account=account,
            login=login,
            campaign=campaign,
            amount=amount,
            deposit_amount=deposit_amount,
            deal_id=deal_id,
            trigger=Bonus.Trigger.PROMO_CODE,
            actor=actor,
            operation=operation,
        )
    operation_execute(operation)
    bonus.refresh_from_db()
    return bonus


# --- Internals -------------------------------------------------------------------------------


def _checked_grant(
    *,
    login,
    account,
    campaign,
    deposit_amount,
    deal_id,
    override_eligibility: bool,
    approval_id: int | None = None,
) -> tuple[list, Decimal]:
    """Eligibility, amount and deal checks of one grant, under the account's lock: the
    failures waived by the override, and the amount."""
    failures = eligibility_failures(
        login=login,
        account=account,
        campaign=campaign,
        deposit_amount=deposit_amount,
        deal_id=deal_id,
    )
    blocking = [f for f in failures if not f.overridable] if override_eligibility else failures
    if blocking:
        detail = (
            "Failures that cannot be overridden block this bonus." if override_eligibility else None
        )
        raise IneligibleError(detail, failures=failures)
    amount = bonus_amount(campaign=campaign, deposit_amount=deposit_amount)
    if amount <= 0:
        raise ApplicationError(
            "The bonus amount is zero (no deposit amount, or nothing to grant).",
            code="bonus_amount_zero",
        )
    if deal_id is not None:
        deal_check_unused(
            campaign_id=campaign.pk, login=login, deal_id=deal_id, approval_id=approval_id
        )
    return failures, amount


def _create_once(**fields) -> Bonus:
    """`_create_pending` in a savepoint: the unique deal constraint backs up the check."""
    try:
        with transaction.atomic():
            return _create_pending(**fields)
    except IntegrityError as exc:
        raise ConflictError(
            f"Deal {fields['deal_id']} already gave a bonus of this campaign.",
            code="deal_already_used",
        ) from exc


def _deposits_grant(
    deposits: list[Deposit], accounts: dict[int, MT5Account], *, actor
) -> list[list[Bonus]]:
    """Record the deposits and their pending bonuses (`ACCOUNTS_PER_TRANSACTION` deposits a
    transaction), then send every credit. A part that fails to record stops the recording,
    but what was recorded before it is sent before the error goes up."""
    granted: list[tuple[int, _Pending]] = []  # (the deposit's index, its bonus to be)
    seen_before: list[int] = []
    error: Exception | None = None
    for start in range(0, len(deposits), ACCOUNTS_PER_TRANSACTION):
        try:
            _record_deposits(deposits, start, accounts, actor, granted, seen_before)
        except Exception as exc:
            error = exc
            break
    results: list[list[Bonus]] = [[] for _ in deposits]
    try:
        sent = _execute_grants([(pending.bonus, pending.operation) for _, pending in granted])
    except Exception as exc:
        if error is not None:
            raise error from exc  # the first failure is the one to report (and retry on)
        raise
    if error is not None:
        raise error
    for (index, _), bonus in zip(granted, sent, strict=True):
        results[index].append(bonus)
    if seen_before:
        earlier: dict[tuple[int, int | None], list[Bonus]] = {}
        rows = Bonus.objects.filter(
            login__in={deposits[i].login for i in seen_before},
            deposit_deal_id__in={deposits[i].deal_id for i in seen_before},
        ).order_by("pk")
        for bonus in rows:
            earlier.setdefault((bonus.login, bonus.deposit_deal_id), []).append(bonus)
        for index in seen_before:
            results[index] = earlier.get((deposits[index].login, deposits[index].deal_id), [])
    return results


def _record_deposits(deposits, start, accounts, actor, granted, seen_before) -> None:
    """One transaction: the deposits from `start` (one part) under their accounts' locks,
    the rules of each campaign, and their pending bonuses, appended to `granted`."""
    end = min(len(deposits), start + ACCOUNTS_PER_TRANSACTION)
    part = [(index, deposits[index]) for index in range(start, end)]
    planned_here: list[tuple[int, _Pending]] = []
    with transaction.atomic():
        lock_accounts(deposit.login for _, deposit in part)
        seen = _deals_seen([deposit for _, deposit in part])
        campaigns = live_campaigns(
            [Campaign.TriggerType.AUTO_DEPOSIT, Campaign.TriggerType.AGENT_CODE]
        )
        held = held_bonuses({deposit.login for _, deposit in part})
        sights: list[DepositSeen] = []
        skips: list[StackingSkip] = []
        seen_here: list[int] = []
        for index, deposit in part:
            if deposit.deal_id is not None:
                if (deposit.login, deposit.deal_id) in seen:
                    seen_here.append(index)
                    continue
                seen.add((deposit.login, deposit.deal_id))
                sights.append(
                    DepositSeen(
                        login=deposit.login,
                        deal_id=deposit.deal_id,
                        amount=deposit.amount,
                        source=(deposit.source or "")[:32],
                    )
                )
            account = accounts.get(deposit.login)
            login_held = held.setdefault(deposit.login, [])
            for campaign in _deposit_campaigns(account, campaigns):
                planned = _deposit_grant_plan(
                    account=account,
                    deposit=deposit,
                    campaign=campaign,
                    actor=actor,
                    held=login_held,
                    skips=skips,
                )
                if planned is not None:
                    login_held.append(planned.bonus)  # the next campaign's rules see it
                    planned_here.append((index, planned))
        # Under the accounts' locks nobody else records these deals; the unique constraint
        # backs that up (an IntegrityError rolls this part back, to be tried again).
        DepositSeen.objects.bulk_create(sights)
        StackingSkip.objects.bulk_create(skips, ignore_conflicts=True)
        _record_pending([pending for _, pending in planned_here])
    granted.extend(planned_here)
    seen_before.extend(seen_here)


def _deals_seen(deposits: list[Deposit]) -> set[tuple[int, int]]:
    """Which of these (login, deal) pairs were recorded before (under the accounts' locks)."""
    wanted = {(d.login, d.deal_id) for d in deposits if d.deal_id is not None}
    if not wanted:
        return set()
    rows = DepositSeen.objects.filter(
        login__in={login for login, _ in wanted}, deal_id__in={deal for _, deal in wanted}
    ).values_list("login", "deal_id")
    return {row for row in rows if row in wanted}


def _deposit_campaigns(account: MT5Account | None, campaigns: list[Campaign]) -> list[Campaign]:
    """Of the live auto_deposit and agent_code `campaigns`, those a deposit of `account` fires
    (one with agent codes only on a match), in order: highest priority first, the older
    campaign on a tie."""
    if account is None:
        return []
    lead_source = account.lead_source.strip().casefold()
    chosen = []
    for campaign in campaigns:
        codes = normalized_codes(campaign.agent_codes)
        if campaign.trigger_type == Campaign.TriggerType.AGENT_CODE and not codes:
            continue  # an agent-code campaign without codes matches nobody
        if codes and lead_source not in codes:
            continue
        chosen.append(campaign)
    return sorted(chosen, key=lambda campaign: (-campaign.priority, campaign.pk))


@dataclass
class _Pending:
    """A pending bonus to be written, the operation of its credit and its audit event."""

    bonus: Bonus
    operation: uuid.UUID
    audit: dict


def _deposit_grant_plan(
    *, account, deposit: Deposit, campaign, actor, held: list[Bonus], skips: list[StackingSkip]
) -> _Pending | None:
    """The bonus `campaign` gives this deposit (see `_grant_plan`), or None."""
    trigger = (
        Bonus.Trigger.AGENT_CODE
        if campaign.trigger_type == Campaign.TriggerType.AGENT_CODE
        else Bonus.Trigger.AUTO_DEPOSIT
    )
    return _grant_plan(
        account=account,
        login=deposit.login,
        campaign=campaign,
        deposit_amount=deposit.amount,
        deal_id=deposit.deal_id,
        trigger=trigger,
        actor=actor,
        held=held,
        skips=skips,
    )


def _grant_plan(
    *,
    account,
    login: int,
    campaign,
    deposit_amount: Decimal | None,
    deal_id: int | None,
    trigger,
    actor,
    held: list[Bonus],
    skips: list[StackingSkip],
) -> _Pending | None:
    """The bonus `campaign` gives, judged against `held` (the login's bonuses, those planned
    in this batch included), or None; a campaign that lost only to stacking on a deposit deal
    adds its `StackingSkip`."""
    failures = eligibility_failures(
        login=login,
        account=account,
        campaign=campaign,
        deposit_amount=deposit_amount,
        deal_id=deal_id,
        held=held,
    )
    if failures:
        stacked_out = [f.code for f in failures] == ["stacking_exclusive"]
        if stacked_out and deal_id is not None and deposit_amount is not None:
            # Recorded once: the campaign qualified for the deposit but another took it.
            taken = deal_bonuses_elsewhere(
                login=login, campaign=campaign, deal_id=deal_id, held=held
            )
            skips.append(
                StackingSkip(
                    campaign=campaign,
                    login=login,
                    deal_id=deal_id,
                    taken_by_id=taken[0].campaign_id,
                    deposit_amount=deposit_amount,
                )
            )
        logger.info(
            "campaign %s not granted to %s: %s",
            campaign.pk,
            login,
            ", ".join(f.code for f in failures),
        )
        return None
    amount = bonus_amount(campaign=campaign, deposit_amount=deposit_amount)
    if amount <= 0:
        return None
    if deal_id is not None and any(
        bonus.campaign_id == campaign.pk
        and bonus.deposit_deal_id == deal_id
        and bonus.status != Bonus.Status.FAILED
        for bonus in held
    ):
        # Assigned by hand from this deal before the engine saw it: it gave its bonus.
        logger.info("campaign %s: deal %s on %s already used", campaign.pk, deal_id, login)
        return None
    return _pending(  # one operation per bonus: one stuck credit never holds up another
        account=account,
        login=login,
        campaign=campaign,
        amount=amount,
        deposit_amount=deposit_amount,
        deal_id=deal_id,
        trigger=trigger,
        actor=actor,
        operation=new_operation(),
    )


def _create_pending(**fields) -> Bonus:
    """One pending bonus written now, with its credit-in intent and its audit event."""
    pending = _pending(**fields)
    _record_pending([pending])
    return pending.bonus


def _pending(
    *,
    account,
    login,
    campaign,
    amount,
    deposit_amount,
    deal_id,
    trigger,
    actor,
    operation,
    overridden=(),
    override_reason: str = "",
    audit_actor=None,
    audit_reason: str = "",
) -> _Pending:
    now = timezone.now()
    lots_required = bonus_kind(campaign.bonus_type).lots_required(campaign=campaign, amount=amount)
    expires_at = None
    if campaign.bonus_expiry_days:
        expires_at = now + timedelta(days=campaign.bonus_expiry_days)
    overridden = [asdict(failure) for failure in overridden]
    bonus = Bonus(
        campaign=campaign,
        login=login,
        bonus_type=campaign.bonus_type,
        status=Bonus.Status.PENDING,
        trigger=trigger,
        amount=amount,
        credit_remaining=ZERO,
        deposit_amount=deposit_amount,
        deposit_deal_id=deal_id,
        lots_required=lots_required,
        expires_at=expires_at,
        granted_by=actor if getattr(actor, "pk", None) else None,
        override_reason=override_reason if overridden else "",
        overridden_failures=overridden,
    )
    audit = {
        "verb": "granted",
        "before": None,
        "actor": audit_actor or actor,
        "account": account,
        "reason": audit_reason or override_reason or f"trigger: {trigger}",
        "extra": {"overridden_failures": overridden} if overridden else None,
    }
    return _Pending(bonus=bonus, operation=operation, audit=audit)


def _record_pending(pendings: list[_Pending]) -> None:
    """Write the pending bonuses, their credit-in intents and their `granted` events, a few
    statements for all of them, in the caller's transaction."""
    if not pendings:
        return
    Bonus.objects.bulk_create([pending.bonus for pending in pendings])
    CreditIntent.objects.bulk_create(
        [
            intent_build(
                login=pending.bonus.login,
                kind=CreditIntent.Kind.CREDIT_IN,
                operation=pending.operation,
                bonus=pending.bonus,
                amount=pending.bonus.amount,
                reason="grant",
            )
            for pending in pendings
        ]
    )
    audit_record_many([bonus_event(bonus=pending.bonus, **pending.audit) for pending in pendings])


def _execute_grants(granted: list[tuple[Bonus, uuid.UUID]]) -> list[Bonus]:
    """Send the grants' credits (all at once), then the bonuses as they are now."""
    operations_execute_many([operation for _, operation in granted])
    fresh = Bonus.objects.in_bulk([bonus.pk for bonus, _ in granted])
    return [fresh[bonus.pk] for bonus, _ in granted]


def _money_or_none(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError("money is never a float")
    try:
        amount = Decimal(value).quantize(CENT)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ApplicationError(f"Not an amount: {value!r}.", code="invalid_amount") from exc
    if not amount.is_finite() or amount < 0:
        raise ApplicationError("A deposit amount cannot be negative.", code="invalid_amount")
    return amount


def _positive_money(value) -> Decimal:
    amount = _money_or_none(value)
    if amount is None or amount <= 0:
        raise ApplicationError("The amount must be positive.", code="invalid_amount")
    return amount
