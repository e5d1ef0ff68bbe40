"""Granting bonuses: manual assign and the deposit, registration and promo-code triggers.

A grant is, in one short transaction under the account's lock: the eligibility rules again
(so two grants at once cannot both pass `duplicate_bonus` or `max_concurrent`), a `pending`
bonus, its credit-in intent and the audit event. After the commit the credit is sent; the
bonus turns `active` when the server confirms it (then Type A adjusts the leverage), or
`failed` if the server refuses it. A zero amount grants nothing: there is no credit to post.
"""

from dataclasses import asdict
from datetime import timedelta
from decimal import ROUND_UP, Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import ApplicationError
from bonuses.models import Bonus, CreditIntent, DepositSeen
from campaigns.models import Campaign
from gateways.mt5 import MT5Account

from .common import CENT, ZERO, atomic_for, audit_bonus, cents_down, live_campaigns, logger
from .common import read_account as _read_account
from .eligibility import IneligibleError, eligibility_failures, normalized_codes
from .ledger import intent_add, new_operation, operation_execute

TriggerType = Campaign.TriggerType


def bonus_amount(*, campaign: Campaign, deposit_amount: Decimal | None) -> Decimal:
    """Registration: the fixed amount; otherwise deposit * percentage / 100. Capped at
    max_bonus, rounded down to cents; no deposit gives 0."""
    if campaign.trigger_type == TriggerType.REGISTRATION:
        amount = campaign.fixed_amount or ZERO
    elif deposit_amount is None:
        amount = ZERO
    else:
        amount = Decimal(deposit_amount) * campaign.percentage / 100
    if campaign.max_bonus is not None:
        amount = min(amount, campaign.max_bonus)
    return max(cents_down(amount), ZERO)


def bonus_assign(
    *,
    login: int,
    campaign: Campaign,
    deposit_amount: Decimal | None = None,
    override_eligibility: bool = False,
    reason: str = "",
    actor=None,
    trigger: str = "manual",
) -> Bonus:
    """Grant `campaign`'s bonus to `login`; with override, only non-overridable failures
    block. Ineligible: `IneligibleError` (409) carrying every failure."""
    if trigger not in Bonus.Trigger.values:
        raise ApplicationError(f"Unknown trigger {trigger!r}.", code="invalid_trigger")
    deposit_amount = _money_or_none(deposit_amount)
    account = _read_account(login)
    operation = new_operation()
    with atomic_for(login):
        failures = eligibility_failures(
            login=login, account=account, campaign=campaign, deposit_amount=deposit_amount
        )
        blocking = [f for f in failures if not f.overridable] if override_eligibility else failures
        if blocking:
            detail = (
                "Failures that cannot be overridden block this bonus."
                if override_eligibility
                else None
            )
            raise IneligibleError(detail, failures=failures)
        amount = bonus_amount(campaign=campaign, deposit_amount=deposit_amount)
        if amount <= 0:
            raise ApplicationError(
                "The bonus amount is zero (no deposit amount, or nothing to grant).",
                code="bonus_amount_zero",
            )
        bonus = _create_pending(
            account=account,
            login=login,
            campaign=campaign,
            amount=amount,
            deposit_amount=deposit_amount,
            deal_id=None,
            trigger=trigger,
            actor=actor,
            operation=operation,
            overridden=failures,
            override_reason=reason,
        )
    operation_execute(operation)
    bonus.refresh_from_db()
    return bonus


def trigger_deposit(
    *,
    login: int,
    amount: Decimal,
    deal_id: int | None = None,
    actor=None,
    source: str = "api",
) -> list[Bonus]:
    """A deposit arrived: grant every matching campaign (auto_deposit, and agent-code
    campaigns whose codes match the Lead Source), within the rules.

    Idempotent on `deal_id`: the deal is recorded first, and a deal seen again returns the
    bonuses its first arrival granted. Without a deal id every call is a new deposit.
    """
    amount = _positive_money(amount)
    account = _read_account(login)
    granted: list[tuple[Bonus, object]] = []
    with atomic_for(login):
        if deal_id is not None and not _first_sight(login, deal_id, amount, source):
            return list(Bonus.objects.filter(login=login, deposit_deal_id=deal_id).order_by("pk"))
        for campaign in _deposit_campaigns(account):
            trigger = (
                Bonus.Trigger.AGENT_CODE
                if campaign.trigger_type == TriggerType.AGENT_CODE
                else Bonus.Trigger.AUTO_DEPOSIT
            )
            bonus = _grant_if_eligible(
                account=account,
                login=login,
                campaign=campaign,
                deposit_amount=amount,
                deal_id=deal_id,
                trigger=trigger,
                actor=actor,
            )
            if bonus is not None:
                granted.append(bonus)
    return _execute_grants(granted)


def trigger_registration(*, login: int, actor=None) -> list[Bonus]:
    """A new account: grant every live registration campaign's fixed amount, at most once
    per campaign and account (whatever one_per_account says)."""
    account = _read_account(login)
    granted: list[tuple[Bonus, object]] = []
    with atomic_for(login):
        for campaign in live_campaigns([TriggerType.REGISTRATION]):
            already = (
                Bonus.objects.filter(
                    login=login, campaign=campaign, trigger=Bonus.Trigger.REGISTRATION
                )
                .exclude(status=Bonus.Status.FAILED)
                .exists()
            )
            if already:
                continue
            bonus = _grant_if_eligible(
                account=account,
                login=login,
                campaign=campaign,
                deposit_amount=None,
                deal_id=None,
                trigger=Bonus.Trigger.REGISTRATION,
                actor=actor,
            )
            if bonus is not None:
                granted.append(bonus)
    return _execute_grants(granted)


def trigger_promo_code(
    *, login: int, code: str, deposit_amount: Decimal | None = None, actor=None
) -> Bonus:
    """Redeem a promo code (case-insensitive). Unknown or not-active code: 400
    `invalid_promo_code`; ineligible: 409 with every failure."""
    code = (code or "").strip()
    campaign = (
        Campaign.objects.filter(promo_code__iexact=code, status=Campaign.Status.ACTIVE).first()
        if code
        else None
    )
    if campaign is None:
        raise ApplicationError("Unknown or inactive promo code.", code="invalid_promo_code")
    return bonus_assign(
        login=login,
        campaign=campaign,
        deposit_amount=deposit_amount,
        actor=actor,
        trigger=Bonus.Trigger.PROMO_CODE,
    )


# --- Internals -------------------------------------------------------------------------------


def _first_sight(login: int, deal_id: int, amount: Decimal, source: str) -> bool:
    # Under the account lock the exists() decides; the unique constraint backs it up.
    if DepositSeen.objects.filter(login=login, deal_id=deal_id).exists():
        return False
    try:
        with transaction.atomic():
            DepositSeen.objects.create(
                login=login, deal_id=deal_id, amount=amount, source=(source or "")[:32]
            )
    except IntegrityError:
        return False
    return True


def _deposit_campaigns(account: MT5Account | None) -> list[Campaign]:
    """Live auto_deposit and agent_code campaigns; one with agent codes only on a match."""
    if account is None:
        return []
    lead_source = account.lead_source.strip().casefold()
    chosen = []
    for campaign in live_campaigns([TriggerType.AUTO_DEPOSIT, TriggerType.AGENT_CODE]):
        codes = normalized_codes(campaign.agent_codes)
        if campaign.trigger_type == TriggerType.AGENT_CODE and not codes:
            continue  # an agent-code campaign without codes matches nobody
        if codes and lead_source not in codes:
            continue
        chosen.append(campaign)
    return chosen


def _grant_if_eligible(
    *, account, login, campaign, deposit_amount, deal_id, trigger, actor
) -> tuple[Bonus, object] | None:
    failures = eligibility_failures(
        login=login, account=account, campaign=campaign, deposit_amount=deposit_amount
    )
    if failures:
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
    operation = new_operation()  # one per bonus: one stuck credit never holds up another
    bonus = _create_pending(
        account=account,
        login=login,
        campaign=campaign,
        amount=amount,
        deposit_amount=deposit_amount,
        deal_id=deal_id,
        trigger=trigger,
        actor=actor,
        operation=operation,
    )
    return bonus, operation


def _create_pending(
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
) -> Bonus:
    now = timezone.now()
    lots_required = None
    if campaign.bonus_type == Campaign.BonusType.C and campaign.convert_per_lot:
        # Rounded up: trading `lots_required` lots always converts the whole amount.
        lots_required = (amount / campaign.convert_per_lot).quantize(CENT, rounding=ROUND_UP)
    expires_at = None
    if campaign.bonus_expiry_days:
        expires_at = now + timedelta(days=campaign.bonus_expiry_days)
    overridden = [asdict(failure) for failure in overridden]
    bonus = Bonus.objects.create(
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
    intent_add(
        login=login,
        kind=CreditIntent.Kind.CREDIT_IN,
        operation=operation,
        bonus=bonus,
        amount=amount,
        reason="grant",
    )
    audit_bonus(
        verb="granted",
        bonus=bonus,
        before=None,
        actor=actor,
        account=account,
        reason=override_reason or f"trigger: {trigger}",
        extra={"overridden_failures": overridden} if overridden else None,
    )
    return bonus


def _execute_grants(granted: list[tuple[Bonus, object]]) -> list[Bonus]:
    bonuses = []
    for bonus, operation in granted:
        operation_execute(operation)
        bonus.refresh_from_db()
        bonuses.append(bonus)
    return bonuses


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
