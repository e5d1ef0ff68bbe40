import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from licensing.errors import QuotaExceededError
from licensing.models import FREE_QUOTAS, Plan, Quota, QuotaHold
from licensing.services import (
    quota_allows,
    quota_check_and_reserve,
    quota_limits,
    quota_release,
    subscription_cancel,
    subscription_create,
)


@pytest.fixture
def basic_user(make_user):
    user = make_user()
    subscription_create(user=user, plan_code="basic")
    return user


@pytest.mark.django_db
def test_a_user_without_a_subscription_gets_the_free_quotas(make_user):
    assert quota_limits(user=make_user()) == ("free", FREE_QUOTAS)


@pytest.mark.django_db
def test_a_basic_user_cannot_start_more_sessions_than_the_plan_allows(basic_user):
    allowed = Plan.objects.get(code="basic").max_active_sessions
    for n in range(allowed):
        quota_check_and_reserve(user=basic_user, what=Quota.ACTIVE_SESSIONS, ref=f"session:{n}")
    with pytest.raises(QuotaExceededError) as refused:
        quota_check_and_reserve(user=basic_user, what=Quota.ACTIVE_SESSIONS, ref="session:99")
    assert refused.value.status_code == 409
    assert refused.value.extra == {
        "quota": "max_active_sessions",
        "limit": allowed,
        "used": allowed,
    }


@pytest.mark.django_db
def test_reserving_the_same_ref_twice_holds_one_unit_and_releasing_frees_it(basic_user):
    first = quota_check_and_reserve(user=basic_user, what=Quota.ACTIVE_SESSIONS, ref="s:1")
    again = quota_check_and_reserve(user=basic_user, what=Quota.ACTIVE_SESSIONS, ref="s:1")
    assert first.pk == again.pk
    assert QuotaHold.objects.count() == 1
    assert quota_release(user=basic_user, what=Quota.ACTIVE_SESSIONS, ref="s:1")
    assert not quota_release(user=basic_user, what=Quota.ACTIVE_SESSIONS, ref="s:1")


@pytest.mark.django_db
def test_trades_per_day_count_again_on_the_next_utc_day(basic_user):
    limit = Plan.objects.get(code="basic").max_trades_per_day
    for n in range(limit):
        quota_check_and_reserve(user=basic_user, what=Quota.TRADES_PER_DAY, ref=f"t:{n}")
    with pytest.raises(QuotaExceededError):
        quota_check_and_reserve(user=basic_user, what=Quota.TRADES_PER_DAY, ref="t:x")
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        quota_check_and_reserve(user=basic_user, what=Quota.TRADES_PER_DAY, ref="t:x")


@pytest.mark.django_db
def test_quota_allows_counts_the_callers_own_rows(basic_user):
    decision = quota_allows(user=basic_user, what=Quota.BROKER_ACCOUNTS, used=lambda: 1)
    assert (decision.allowed, decision.limit, decision.used, decision.plan) == (
        False,
        1,
        1,
        "basic",
    )
    assert quota_allows(user=basic_user, what=Quota.BROKER_ACCOUNTS, used=0).allowed


@pytest.mark.django_db
def test_cancelling_the_subscription_falls_back_to_free_quotas(basic_user):
    subscription_cancel(subscription=basic_user.subscriptions.get(is_active=True))
    assert quota_limits(user=basic_user)[0] == "free"


@pytest.mark.django_db
def test_subscribing_again_replaces_the_active_subscription(basic_user):
    subscription_create(user=basic_user, plan_code="vip")
    assert basic_user.subscriptions.filter(is_active=True).get().plan.code == "vip"
    assert quota_limits(user=basic_user)[0] == "vip"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_session_starts_never_exceed_the_basic_plan(make_user):
    user = make_user()
    subscription_create(user=user, plan_code="basic")
    allowed = Plan.objects.get(code="basic").max_active_sessions
    threads_n = 10
    start = threading.Barrier(threads_n)
    results, errors = [], []

    def start_session(n):
        try:
            start.wait(timeout=10)
            with transaction.atomic():
                quota_check_and_reserve(user=user, what=Quota.ACTIVE_SESSIONS, ref=f"s:{n}")
            results.append(n)
        except QuotaExceededError:
            errors.append(n)
        finally:
            connection.close()

    threads = [threading.Thread(target=start_session, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == allowed
    assert len(errors) == threads_n - allowed
    assert QuotaHold.objects.filter(user=user).count() == allowed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_on_the_callers_own_rows_are_serialized(make_user):
    """The trading_sessions pattern: count own rows under the lock, then write, one commit."""
    user = make_user()
    subscription_create(user=user, plan_code="basic")
    allowed = Plan.objects.get(code="basic").max_active_sessions
    threads_n = 10
    start = threading.Barrier(threads_n)
    started = []

    def start_session(n):
        try:
            start.wait(timeout=10)
            with transaction.atomic():
                decision = quota_allows(
                    user=user,
                    what=Quota.ACTIVE_SESSIONS,
                    used=lambda: QuotaHold.objects.filter(user=user, quota="x").count(),
                )
                if decision.allowed:  # the caller's own "session row"
                    QuotaHold.objects.create(user=user, quota="x", ref=f"own:{n}")
                    started.append(n)
        finally:
            connection.close()

    threads = [threading.Thread(target=start_session, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(started) == allowed
