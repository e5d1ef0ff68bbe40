"""Subscriptions: one active per user; subscribing again replaces the active one."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.errors import ConflictError, NotFoundError
from accounts.locks import AdvisoryLock, advisory_xact_lock
from accounts.services import audit_record

from ..models import Plan, Subscription


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
    """Cancel now; the user falls back to the free quotas."""
    now = timezone.now()
    if not Subscription.objects.filter(pk=subscription.pk, is_active=True).update(
        is_active=False, cancelled_at=now
    ):
        raise ConflictError(
            "This subscription is already cancelled.", code="subscription_cancelled"
        )
    subscription.refresh_from_db()
    audit_record(action="subscription.cancel", obj=subscription, actor=actor, ip=ip)
    return subscription
