"""Subscriptions: one active per user; subscribing again replaces the active one.

A plan ends when it is cancelled or when the expiry sweep finds it past `ends_at` (then it is
set inactive, `cancelled_at` left empty); either way `plan_ended` is sent in the same
transaction, so what the user ran under the plan stops with it.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from core.errors import ConflictError, NotFoundError
from core.locks import AdvisoryLock, advisory_xact_lock

from ..models import Plan, Subscription
from ..signals import plan_ended


def _plan(code: str) -> Plan:
    plan = Plan.objects.filter(code=code, is_active=True).first()
    if plan is None:
        raise NotFoundError(f"No plan {code!r}.", code="plan_not_found")
    return plan


@transaction.atomic
def subscription_create(
    *, user, plan_code: str, days: int | None = None, actor=None, ip: str | None = None
) -> Subscription:
    """Subscribe `user` to a plan from now; an active subscription it had ends now."""
    plan = _plan(plan_code)
    advisory_xact_lock(AdvisoryLock.LICENSING_QUOTA, user.pk)
    now = timezone.now()
    Subscription.objects.filter(user=user, is_active=True).update(is_active=False, cancelled_at=now)
    subscription = Subscription.objects.create(
        user=user,
        plan=plan,
        starts_at=now,
        ends_at=now + timedelta(days=days or settings.LICENSE_SUBSCRIPTION_DAYS),
    )
    audit_record(
        action="subscription.create",
        obj=subscription,
        actor=actor or user,
        ip=ip,
        after={"plan": plan.code, "ends_at": subscription.ends_at},
    )
    return subscription


@transaction.atomic
def subscription_change(
    *, subscription: Subscription, plan_code: str, actor=None, ip: str | None = None
) -> Subscription:
    """Move an active subscription to another plan (same dates)."""
    if not subscription.is_active:
        raise ConflictError("This subscription is cancelled.", code="subscription_cancelled")
    plan = _plan(plan_code)
    before = subscription.plan.code
    subscription.plan = plan
    subscription.save(update_fields=["plan"])
    audit_record(
        action="subscription.change",
        obj=subscription,
        actor=actor,
        ip=ip,
        before={"plan": before},
        after={"plan": plan.code},
    )
    return subscription


@transaction.atomic
def subscription_cancel(
    *, subscription: Subscription, actor=None, ip: str | None = None
) -> Subscription:
    """Cancel now; the user falls back to the free quotas, and what ran under the plan stops."""
    # The quota lock before the row's, as subscribing and the trading services take them.
    advisory_xact_lock(AdvisoryLock.LICENSING_QUOTA, subscription.user_id)
    now = timezone.now()
    if not Subscription.objects.filter(pk=subscription.pk, is_active=True).update(
        is_active=False, cancelled_at=now
    ):
        raise ConflictError(
            "This subscription is already cancelled.", code="subscription_cancelled"
        )
    subscription.refresh_from_db()
    audit_record(action="subscription.cancel", obj=subscription, actor=actor, ip=ip)
    plan_ended.send(sender=Subscription, user_id=subscription.user_id, subscription=subscription)
    return subscription


def subscriptions_expire_due(*, limit: int = 1000) -> int:
    """End active subscriptions past `ends_at` (a bounded batch, one transaction each);
    returns how many. Overlapping sweeps end each one once (a conditional UPDATE)."""
    now = timezone.now()
    due = list(
        Subscription.objects.filter(is_active=True, ends_at__lte=now)
        .order_by("pk")
        .values_list("pk", "user_id")[:limit]
    )
    ended = 0
    for pk, user_id in due:
        with transaction.atomic():
            # The user's quota lock, as a subscribe takes it: a replacement plan made at this
            # moment is either seen (this one is no longer active) or waits.
            advisory_xact_lock(AdvisoryLock.LICENSING_QUOTA, user_id)
            if not Subscription.objects.filter(pk=pk, is_active=True, ends_at__lte=now).update(
                is_active=False
            ):
                continue
            subscription = Subscription.objects.select_related("plan").get(pk=pk)
            audit_record(
                action="subscription.expire",
                obj=subscription,
                after={"plan": subscription.plan.code, "ends_at": subscription.ends_at},
            )
            plan_ended.send(sender=Subscription, user_id=user_id, subscription=subscription)
            ended += 1
    return ended


def subscriptions_lapsed(*, user_ids: Iterable[int], now: datetime | None = None) -> set[int]:
    """Of these users, those whose active subscription is past its end but not yet ended by
    the sweep: their plan no longer applies, and what they started under it must not go on."""
    now = now or timezone.now()
    return set(
        Subscription.objects.filter(
            user_id__in=list(user_ids), is_active=True, ends_at__lte=now
        ).values_list("user_id", flat=True)
    )
