"""Four eyes on manual credit: the per-role limits, and the request of what goes above them.

`BONUS_MANUAL_LIMITS` gives each staff role the credit one person may grant by hand alone:
per bonus, and per UTC day (the manual bonuses they were granted that day that did not fail,
plus their requests still pending). A user with several roles gets the most generous; a role
with no entry may grant nothing alone. Above the limit `bonus_assign` records a
`BonusApproval` instead of a bonus, audited here; a Super Admin who is not the requester
decides on it (`approvals`). The daily sum is read under a row lock on the requester, so two
assigns at once cannot both squeeze under the limit.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.services import audit_record, user_roles
from bonuses.models import Bonus, BonusApproval
from core.money import ZERO


@dataclass(frozen=True)
class ManualLimit:
    """What one person may grant by hand without a second person."""

    per_bonus: Decimal
    per_day: Decimal


def manual_limit_of(*, user) -> ManualLimit:
    """The most generous limit among `user`'s roles (none configured: zero)."""
    roles = user_roles(user)
    limits = [
        ManualLimit(per_bonus=Decimal(limit["per_bonus"]), per_day=Decimal(limit["per_day"]))
        for role, limit in settings.BONUS_MANUAL_LIMITS.items()
        if role in roles
    ]
    if not limits:
        return ManualLimit(per_bonus=ZERO, per_day=ZERO)
    return ManualLimit(
        per_bonus=max(limit.per_bonus for limit in limits),
        per_day=max(limit.per_day for limit in limits),
    )


def manual_credit_today(*, user, now: datetime | None = None) -> Decimal:
    """Manual credit `user` was granted (not failed) or asked for (pending) this UTC day."""
    now = now or timezone.now()
    day_start = datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)
    granted = (
        Bonus.objects.filter(
            granted_by=user, trigger=Bonus.Trigger.MANUAL, created_at__gte=day_start
        )
        .exclude(status=Bonus.Status.FAILED)
        .aggregate(total=Sum("amount"))["total"]
    )
    pending = BonusApproval.objects.filter(
        requested_by=user, status=BonusApproval.Status.PENDING, created_at__gte=day_start
    ).aggregate(total=Sum("amount"))["total"]
    return (granted or ZERO) + (pending or ZERO)


def requester_lock(*, user) -> None:
    """Serialize `user`'s manual grants until this transaction ends (a row lock on the user)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("the requester's lock needs an open transaction")
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))


def manual_limit_excess(*, user, amount: Decimal) -> str | None:
    """Why `amount` needs a second person's approval, or None. Call it under `requester_lock`."""
    limit = manual_limit_of(user=user)
    if amount > limit.per_bonus:
        return f"{amount} is above the per-bonus limit of your role ({limit.per_bonus})."
    today = manual_credit_today(user=user)
    if today + amount > limit.per_day:
        return (
            f"{amount} on top of {today} granted or pending today is above the daily limit "
            f"of your role ({limit.per_day})."
        )
    return None


def approval_state(approval: BonusApproval) -> dict:
    """The approval fields an audit event keeps."""
    return {
        "id": approval.pk,
        "status": approval.status,
        "login": approval.login,
        "campaign": approval.campaign_id,
        "amount": approval.amount,
        "deposit_amount": approval.deposit_amount,
        "deal_id": approval.deal_id,
        "override_eligibility": approval.override_eligibility,
        "requested_by": approval.requested_by_id,
        "limit_reason": approval.limit_reason,
        "decided_by": approval.decided_by_id,
        "bonus": approval.bonus_id,
        "failure_code": approval.failure_code,
    }


def approval_request(
    *,
    user,
    login: int,
    campaign,
    amount: Decimal,
    deposit_amount: Decimal | None,
    deal_id: int | None,
    override_eligibility: bool,
    reason: str,
    limit_reason: str,
) -> BonusApproval:
    """Record a pending request and audit it, in the caller's transaction."""
    approval = BonusApproval.objects.create(
        requested_by=user,
        login=login,
        campaign=campaign,
        amount=amount,
        deposit_amount=deposit_amount,
        deal_id=deal_id,
        override_eligibility=override_eligibility,
        reason=reason,
        limit_reason=limit_reason[:200],
    )
    audit_record(
        action="bonus_approval.requested",
        obj=approval,
        actor=user,
        mt5_login=login,
        after=approval_state(approval),
        reason=reason or limit_reason,
    )
    return approval
