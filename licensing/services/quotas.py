"""Plans' quotas and the one atomic answer to "may this user do X now".

Every check takes a per-user advisory lock (PostgreSQL; SQLite's IMMEDIATE transactions are
already serialized) held until the surrounding transaction ends, so two requests of the same
user are decided one after the other, never both on the same stale count.

Two ways to count what is in use:

* holds: `quota_check_and_reserve(user=, what=, ref="session:42")` records a `QuotaHold`
  (idempotent per ref) and `quota_release(...)` removes it;
* the caller's own rows: `quota_allows(user=, what=, used=lambda: <count>)` inside the
  caller's `transaction.atomic()`, before it writes; the lock lasts until that commit.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.locks import AdvisoryLock, advisory_xact_lock

from ..errors import QuotaExceededError
from ..models import FREE_QUOTAS, Quota, QuotaHold, Subscription

PER_DAY = {Quota.TRADES_PER_DAY}


@dataclass(frozen=True)
class QuotaDecision:
    allowed: bool
    quota: str
    limit: int
    used: int
    plan: str  # plan code, or "free"

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


def subscription_current(*, user, now: datetime | None = None) -> Subscription | None:
    """The user's subscription in force now, with its plan."""
    now = now or timezone.now()
    return (
        Subscription.objects.select_related("plan")
        .filter(user=user, is_active=True, starts_at__lte=now, plan__is_active=True)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .first()
    )


def quota_limits(*, user, now: datetime | None = None) -> tuple[str, dict[str, int]]:
    """(plan code or "free", {quota: limit}) for the user now."""
    subscription = subscription_current(user=user, now=now)
    if subscription is None:
        return "free", dict(FREE_QUOTAS)
    return subscription.plan.code, subscription.plan.quotas()


def _holds_in_use(*, user, what: str, now: datetime) -> int:
    holds = QuotaHold.objects.filter(user=user, quota=what)
    if what in PER_DAY:
        holds = holds.filter(created_at__gte=datetime.combine(now.date(), time.min, now.tzinfo))
    return holds.count()


def quota_allows(
    *,
    user,
    what: Quota | str,
    used: int | Callable[[], int] | None = None,
    amount: int = 1,
) -> QuotaDecision:
    """Whether `user` may take `amount` more of `what` now; locks the user's quotas until the
    surrounding transaction ends (call it inside the transaction that then does X)."""
    what = Quota(what)
    now = timezone.now()
    with transaction.atomic():
        advisory_xact_lock(AdvisoryLock.LICENSING_QUOTA, user.pk)
        plan, limits = quota_limits(user=user, now=now)
        if used is None:
            in_use = _holds_in_use(user=user, what=what, now=now)
        else:
            in_use = used() if callable(used) else int(used)
        limit = limits[what]
        return QuotaDecision(in_use + amount <= limit, what.value, limit, in_use, plan)


def quota_check_and_reserve(*, user, what: Quota | str, ref: str) -> QuotaHold:
    """Hold one unit of `what` for `ref` (e.g. "session:42"), or 409 `quota_exceeded`.

    Atomic and idempotent: concurrent calls never hold more than the plan allows, and a ref
    already held is returned as it is."""
    what = Quota(what)
    with transaction.atomic():
        advisory_xact_lock(AdvisoryLock.LICENSING_QUOTA, user.pk)
        existing = QuotaHold.objects.filter(user=user, quota=what, ref=ref).first()
        if existing is not None:
            return existing
        decision = quota_allows(user=user, what=what)
        if not decision.allowed:
            raise QuotaExceededError(
                f"Your plan ({decision.plan}) allows {decision.limit} of "
                f"{what.label.lower()}; {decision.used} in use.",
                extra={"quota": what.value, "limit": decision.limit, "used": decision.used},
            )
        return QuotaHold.objects.create(user=user, quota=what, ref=ref)


def quota_release(*, user, what: Quota | str, ref: str) -> bool:
    """Give back the unit held for `ref`; False when none was held."""
    deleted, _ = QuotaHold.objects.filter(user=user, quota=Quota(what), ref=ref).delete()
    return bool(deleted)


def quota_holds_purge(*, before: datetime) -> int:
    """Drop per-day holds of days before `before` (they no longer count)."""
    deleted, _ = QuotaHold.objects.filter(quota__in=PER_DAY, created_at__lt=before).delete()
    return deleted


def quota_limits_many(*, user_ids, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """{user_id: {quota: limit}} for many users in one query (free quotas for those without a
    subscription in force): what bulk jobs such as a signal's fan-out read per batch."""
    return plans_many(user_ids=user_ids, now=now)[0]


def plans_many(
    *, user_ids, now: datetime | None = None
) -> tuple[dict[int, dict[str, int]], set[int]]:
    """({user_id: {quota: limit}}, {user_id whose active subscription is past its end}) for
    many users in one query. A lapsed plan (the expiry sweep has not ended it yet) no longer
    applies: its user gets the free quotas here and is named in the second part, so that a
    bulk job does not go on with what was started under it."""
    now = now or timezone.now()
    user_ids = list(user_ids)
    limits = {user_id: dict(FREE_QUOTAS) for user_id in user_ids}
    lapsed: set[int] = set()
    active = (
        Subscription.objects.select_related("plan")
        .filter(user_id__in=user_ids, is_active=True)
        .order_by("user_id", "-starts_at", "-id")
    )
    seen = set()
    for subscription in active:
        if subscription.ends_at is not None and subscription.ends_at <= now:
            lapsed.add(subscription.user_id)
            continue
        if subscription.starts_at > now or not subscription.plan.is_active:
            continue
        if subscription.user_id not in seen:  # the latest one, as subscription_current's first()
            seen.add(subscription.user_id)
            limits[subscription.user_id] = subscription.plan.quotas()
    return limits, lapsed
