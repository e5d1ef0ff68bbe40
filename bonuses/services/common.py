"""What the engine's modules share: server reads, locks and audit helpers."""

import logging
from contextlib import contextmanager
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from bonuses.models import Bonus
from campaigns.models import Campaign
from core.locks import AdvisoryLock, advisory_xact_lock, advisory_xact_lock_many
from gateways.errors import GatewayError
from gateways.mt5 import MT5Account, get_mt5_gateway

logger = logging.getLogger("bonuses")

# A batch (of grants, of their outcomes) locks at most this many accounts a transaction: each
# advisory lock, and each audit chain's, takes a slot of PostgreSQL's shared lock table.
ACCOUNTS_PER_TRANSACTION = 200
# Bonuses that hold (or are about to hold) credit on the server.
LIVE_STATUSES = (Bonus.Status.PENDING, Bonus.Status.ACTIVE)


def lock_account(login: int) -> None:
    """Serialize money work on `login` until the surrounding transaction ends."""
    advisory_xact_lock(AdvisoryLock.MT5_ACCOUNT, int(login))


def lock_accounts(logins) -> None:
    """`lock_account` for many logins at once, in login order (so batches never deadlock)."""
    advisory_xact_lock_many(AdvisoryLock.MT5_ACCOUNT, [int(login) for login in logins])


def read_account(login: int) -> MT5Account | None:
    """The account as the server shows it now, or None if the server does not know it.

    A network call: never call it inside a transaction. Gateway errors propagate.
    """
    return get_mt5_gateway().get_accounts([int(login)]).get(int(login))


def try_read_account(login: int) -> MT5Account | None:
    """`read_account`, or None when the server cannot be reached (for audit context only)."""
    try:
        return read_account(login)
    except GatewayError as exc:
        logger.warning("could not read MT5 account %s: %s", login, exc)
        return None


def account_state(account: MT5Account | None) -> dict | None:
    """The account fields an audit event keeps."""
    if account is None:
        return None
    return {
        "login": account.login,
        "group": account.group,
        "balance": account.balance,
        "credit": account.credit,
        "equity": account.equity,
        "leverage": account.leverage,
    }


def bonus_state(bonus: Bonus) -> dict:
    """The bonus fields an audit event keeps."""
    return {
        "id": bonus.pk,
        "campaign": bonus.campaign_id,
        "bonus_type": bonus.bonus_type,
        "status": bonus.status,
        "amount": bonus.amount,
        "credit_remaining": bonus.credit_remaining,
        "converted_amount": bonus.converted_amount,
        "lots_traded": bonus.lots_traded,
        "original_leverage": bonus.original_leverage,
        "adjusted_leverage": bonus.adjusted_leverage,
        "cancel_reason": bonus.cancel_reason,
    }


def audit_bonus(
    *,
    verb: str,
    bonus: Bonus,
    before: dict | None,
    actor=None,
    account: MT5Account | None = None,
    reason: str = "",
    extra: dict | None = None,
) -> None:
    """Write `bonus.<verb>` with the bonus before and after, and the account as last read."""
    audit_record(
        **bonus_event(
            verb=verb,
            bonus=bonus,
            before=before,
            actor=actor,
            account=account,
            reason=reason,
            extra=extra,
        )
    )


def bonus_event(
    *,
    verb: str,
    bonus: Bonus,
    before: dict | None,
    actor=None,
    account: MT5Account | None = None,
    reason: str = "",
    extra: dict | None = None,
) -> dict:
    """The `audit_record` arguments of `audit_bonus` (for `audit_record_many`)."""
    after = {"bonus": bonus_state(bonus), "account": account_state(account)}
    if extra:
        after.update(extra)
    return {
        "action": f"bonus.{verb}",
        "obj": bonus,
        "actor": actor,
        "mt5_login": bonus.login,
        "before": {"bonus": before, "account": account_state(account)} if before else None,
        "after": after,
        "reason": reason,
    }


def campaign_window_problem(campaign: Campaign, now: datetime | None = None) -> str | None:
    """Why the campaign's dates rule it out now (not started, or past its end), else None."""
    now = now or timezone.now()
    if campaign.starts_at is not None and now < campaign.starts_at:
        return f"Campaign starts at {campaign.starts_at.isoformat()}."
    if campaign.ends_at is not None and now >= campaign.ends_at:
        return f"Campaign ended at {campaign.ends_at.isoformat()}."
    return None


def live_campaigns(trigger_types, now: datetime | None = None) -> list[Campaign]:
    """Active campaigns of these trigger types inside their dates, oldest first."""
    campaigns = Campaign.objects.filter(
        status=Campaign.Status.ACTIVE, trigger_type__in=list(trigger_types)
    ).order_by("pk")
    return [c for c in campaigns if campaign_window_problem(c, now) is None]


@contextmanager
def atomic_for(login: int):
    """A short transaction holding `login`'s account lock."""
    with transaction.atomic():
        lock_account(login)
        yield
