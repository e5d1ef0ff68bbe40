"""One deposit and several campaigns: exclusive or stackable, in priority order.

What was seen: one 5,000.00 deposit granted two active campaigns (500.00 + 1,000.00) without
anyone having decided that they stack. Now each campaign says (`stacking`, `priority`), the
safe default is exclusive, and every path that grants from a deposit deal keeps to it.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import MonitoredAccount
from accounts.roles import Role
from accounts.services import monitor_discover, monitor_sweep, monitor_test_deal
from bonuses.models import Bonus
from bonuses.reports import report_summary
from bonuses.services import (
    IneligibleError,
    bonus_assign,
    check_eligibility_all,
    trigger_deposit,
    trigger_promo_code,
)
from campaigns.models import Campaign, StackingSkip
from gateways.models import SimulatedMT5Account
from gateways.mt5 import get_mt5_gateway
from tests.concurrency import run_at_once


def server(login):
    return get_mt5_gateway().get_accounts([login])[login]


def granted(login):
    """(campaign name, amount) of every bonus that holds credit on `login`, oldest first."""
    bonuses = Bonus.objects.filter(login=login).exclude(status="failed").order_by("pk")
    return [(bonus.campaign.name, bonus.amount) for bonus in bonuses.select_related("campaign")]


@pytest.fixture
def watched(mt5, account):
    """`watched(balance="0.00") -> login`: an account opened a month ago, watched from now."""

    def make(balance="0.00"):
        login = account(balance=balance)
        month_ago = timezone.now() - timedelta(days=30)
        SimulatedMT5Account.objects.filter(pk=login).update(registered_at=month_ago)
        monitor_discover()
        assert MonitoredAccount.objects.filter(login=login).exists()
        return login

    return make


@pytest.fixture
def super_admin(make_user):
    return make_user(Role.SUPER_ADMIN)


# --- What was seen ------------------------------------------------------------------------------


def test_one_5000_deposit_seen_by_the_monitor_grants_one_campaign_not_two(
    watched, campaign_factory
):
    campaign_factory(name="Ten percent", bonus_type="B", percentage="10")
    campaign_factory(name="Twenty percent", bonus_type="B", percentage="20")
    login = watched()

    monitor_test_deal(login=login, amount=Decimal("5000.00"))
    for _ in range(3):
        monitor_sweep()

    # Both exclusive (the default), same priority: the older campaign takes the deposit.
    assert granted(login) == [("Ten percent", Decimal("500.00"))]
    assert server(login).credit == Decimal("500.00")


def test_existing_and_new_campaigns_are_exclusive_with_priority_0(campaign_factory):
    campaign = campaign_factory()
    assert (campaign.stacking, campaign.priority) == ("exclusive", 0)
    assert Campaign._meta.get_field("stacking").default == "exclusive"


# --- The order and the rule ---------------------------------------------------------------------


def test_the_higher_priority_campaign_takes_the_deposit(account, campaign_factory):
    campaign_factory(name="Ten percent", bonus_type="B", percentage="10", priority=1)
    campaign_factory(name="Twenty percent", bonus_type="B", percentage="20", priority=5)
    login = account(balance="5000.00")

    trigger_deposit(login=login, amount=Decimal("5000.00"))

    assert granted(login) == [("Twenty percent", Decimal("1000.00"))]


def test_stackable_campaigns_both_fire_as_staff_chose(account, campaign_factory):
    campaign_factory(name="Ten percent", bonus_type="B", percentage="10", stacking="stackable")
    campaign_factory(name="Twenty percent", bonus_type="B", percentage="20", stacking="stackable")
    login = account(balance="5000.00")

    trigger_deposit(login=login, amount=Decimal("5000.00"))

    assert granted(login) == [
        ("Ten percent", Decimal("500.00")),
        ("Twenty percent", Decimal("1000.00")),
    ]
    assert server(login).credit == Decimal("1500.00")


def test_an_exclusive_campaign_does_not_join_stackable_ones_that_fired_first(
    account, campaign_factory
):
    campaign_factory(name="Top", bonus_type="B", percentage="10", stacking="stackable", priority=9)
    campaign_factory(name="Solo", bonus_type="B", percentage="30", priority=5)
    campaign_factory(name="Also", bonus_type="B", percentage="5", stacking="stackable", priority=1)
    login = account(balance="1000.00")

    trigger_deposit(login=login, amount=Decimal("1000.00"))

    assert granted(login) == [("Top", Decimal("100.00")), ("Also", Decimal("50.00"))]


def test_an_exclusive_campaign_that_fires_first_keeps_stackable_ones_out(account, campaign_factory):
    campaign_factory(name="Solo", bonus_type="B", percentage="30", priority=5)
    campaign_factory(name="Low", bonus_type="B", percentage="10", stacking="stackable", priority=1)
    login = account(balance="1000.00")

    trigger_deposit(login=login, amount=Decimal("1000.00"))

    assert granted(login) == [("Solo", Decimal("300.00"))]


def test_an_ineligible_higher_priority_campaign_does_not_block_the_next(account, campaign_factory):
    campaign_factory(name="Big deposits", bonus_type="B", percentage="50", min_deposit="10000")
    campaign_factory(name="Everyone", bonus_type="B", percentage="10")
    login = account(balance="5000.00")

    trigger_deposit(login=login, amount=Decimal("5000.00"))

    assert granted(login) == [("Everyone", Decimal("500.00"))]
    assert not StackingSkip.objects.exists()  # not skipped for stacking: it did not qualify


def test_agent_code_and_auto_deposit_campaigns_share_one_order(account, mt5, campaign_factory):
    campaign_factory(name="Everyone", bonus_type="B", percentage="10")
    campaign_factory(
        name="IB deal",
        bonus_type="B",
        percentage="40",
        trigger_type="agent_code",
        agent_codes=["IB-7"],
        priority=3,
    )
    login = account(balance="1000.00", lead_source="ib-7")

    trigger_deposit(login=login, amount=Decimal("1000.00"))

    assert granted(login) == [("IB deal", Decimal("400.00"))]


def test_each_deposit_is_judged_on_its_own(account, deposit, campaign_factory):
    campaign_factory(name="Ten", bonus_type="B", percentage="10", one_per_account=False)
    campaign_factory(name="Twenty", bonus_type="B", percentage="20", one_per_account=False)
    login = account(balance="0.00")

    for amount in ("100.00", "200.00"):
        trigger_deposit(login=login, amount=Decimal(amount), deal_id=deposit(login, amount))

    assert granted(login) == [("Ten", Decimal("10.00")), ("Ten", Decimal("20.00"))]


# --- Other ways to grant from a deposit keep the rule -------------------------------------------


def test_a_promo_code_on_a_deposit_an_exclusive_campaign_took_is_409(
    account, deposit, campaign_factory
):
    campaign_factory(name="Auto", bonus_type="B", percentage="10")
    promo = campaign_factory(
        name="Promo", bonus_type="B", percentage="25", trigger_type="promo_code", promo_code="P25"
    )
    login = account(balance="0.00")
    deal = deposit(login, "1000.00")
    trigger_deposit(login=login, amount=Decimal("1000.00"), deal_id=deal)

    with pytest.raises(IneligibleError) as caught:
        trigger_promo_code(login=login, code="p25", deal_id=deal)

    assert [f.code for f in caught.value.failures] == ["stacking_exclusive"]
    assert "Auto" in caught.value.failures[0].message
    assert granted(login) == [("Auto", Decimal("100.00"))]
    assert not Bonus.objects.filter(campaign=promo).exists()


def test_a_promo_code_that_took_a_deposit_first_keeps_the_auto_campaign_out(
    watched, deposit, campaign_factory
):
    campaign_factory(name="Auto", bonus_type="B", percentage="10")
    campaign_factory(
        name="Promo", bonus_type="B", percentage="25", trigger_type="promo_code", promo_code="P25"
    )
    login = watched()
    deal = deposit(login, "1000.00")
    trigger_promo_code(login=login, code="P25", deal_id=deal)

    monitor_sweep()
    monitor_sweep()

    assert granted(login) == [("Promo", Decimal("250.00"))]
    skip = StackingSkip.objects.get()
    assert (skip.campaign.name, skip.taken_by.name, skip.deal_id) == ("Auto", "Promo", deal)


def test_staff_may_stack_on_purpose_by_overriding_with_a_reason(
    account, deposit, campaign_factory, super_admin
):
    campaign_factory(name="Auto", bonus_type="B", percentage="10")
    extra = campaign_factory(
        name="Goodwill", bonus_type="B", percentage="5", trigger_type="promo_code", promo_code="G5"
    )
    login = account(balance="0.00")
    deal = deposit(login, "1000.00")
    trigger_deposit(login=login, amount=Decimal("1000.00"), deal_id=deal)

    failures = check_eligibility_all(login=login, campaign=extra, deal_id=deal)
    assert [(f.code, f.overridable) for f in failures] == [("stacking_exclusive", True)]
    with pytest.raises(IneligibleError):
        bonus_assign(login=login, campaign=extra, actor=super_admin, deal_id=deal)
    bonus = bonus_assign(
        login=login,
        campaign=extra,
        actor=super_admin,
        deal_id=deal,
        override_eligibility=True,
        reason="complaint #41",
    )

    assert bonus.overridden_failures[0]["code"] == "stacking_exclusive"
    assert granted(login) == [("Auto", Decimal("100.00")), ("Goodwill", Decimal("50.00"))]


def test_the_eligibility_api_names_the_stacking_failure(
    account, deposit, campaign_factory, super_admin
):
    campaign_factory(name="Auto", bonus_type="B", percentage="10")
    other = campaign_factory(name="Other", bonus_type="B", percentage="20", stacking="stackable")
    login = account(balance="0.00")
    deal = deposit(login, "1000.00")
    trigger_deposit(login=login, amount=Decimal("1000.00"), deal_id=deal)
    api = APIClient()
    api.force_authenticate(super_admin)

    response = api.post(
        "/api/v1/bonuses/check-eligibility/",
        {"login": login, "campaign_id": other.pk, "deal_id": deal},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["eligible"] is False
    assert [f["code"] for f in body["failures"]] == ["stacking_exclusive"]
    assert "which is exclusive" in body["failures"][0]["message"]
    bad = api.post(
        "/api/v1/bonuses/check-eligibility/",
        {"login": login, "campaign_id": other.pk, "deal_id": "1e3"},
        format="json",
    )
    assert bad.status_code == 400


# --- The reports --------------------------------------------------------------------------------


def test_the_summary_counts_each_skipped_deposit_once_and_shows_the_setting(
    watched, campaign_factory, super_admin
):
    first = campaign_factory(name="Ten", bonus_type="B", percentage="10", one_per_account=False)
    second = campaign_factory(name="Twenty", bonus_type="B", percentage="20", one_per_account=False)
    login = watched()
    for amount in ("100.00", "300.00"):
        monitor_test_deal(login=login, amount=Decimal(amount))
        monitor_sweep()
    monitor_sweep()

    rows = {row["campaign_id"]: row for row in report_summary()}
    assert (rows[first.pk]["granted"], rows[first.pk]["skipped_stacking"]) == (2, 0)
    assert (rows[second.pk]["granted"], rows[second.pk]["skipped_stacking"]) == (0, 2)
    assert (rows[second.pk]["stacking"], rows[second.pk]["priority"]) == ("exclusive", 0)

    api = APIClient()
    api.force_authenticate(super_admin)
    body = api.get("/api/v1/reports/summary/").json()
    row = next(r for r in body["results"] if r["campaign_id"] == second.pk)
    assert (row["skipped_stacking"], row["stacking"], row["priority"]) == (2, "exclusive", 0)
    export = api.get("/api/v1/reports/export/?report=summary&format=csv")
    header = export.content.decode().splitlines()[0]
    assert "skipped_stacking" in header and "stacking" in header


# --- Two at once: one outcome -------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_api_trigger_and_a_sweep_on_the_same_deposit_at_once_grant_one_campaign(
    mt5, campaign_factory
):
    campaign_factory(name="Ten", bonus_type="B", percentage="10")
    campaign_factory(name="Twenty", bonus_type="B", percentage="20")
    login = mt5.add_account(balance="0.00")
    month_ago = timezone.now() - timedelta(days=30)
    SimulatedMT5Account.objects.filter(pk=login).update(registered_at=month_ago)
    monitor_discover()
    deal = monitor_test_deal(login=login, amount=Decimal("5000.00"))

    def work(n):
        if n % 2:
            return trigger_deposit(
                login=login, amount=Decimal("5000.00"), deal_id=deal, source="crm"
            )
        return monitor_sweep()

    for _ in range(3):  # several rounds: sweeps and triggers racing again on the same deal
        _, errors = run_at_once(work, threads=4)
        assert errors == []

    assert granted(login) == [("Ten", Decimal("500.00"))]
    assert server(login).credit == Decimal("500.00")
    assert StackingSkip.objects.filter(deal_id=deal).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_manual_assign_and_the_trigger_racing_on_one_deposit_leave_one_bonus(
    mt5, deposit, campaign_factory, make_user
):
    campaign_factory(name="Auto", bonus_type="B", percentage="10")
    manual = campaign_factory(
        name="Manual", bonus_type="B", percentage="20", trigger_type="promo_code", promo_code="M"
    )
    admin = make_user(Role.SUPER_ADMIN)
    login = mt5.add_account(balance="0.00")
    deal = deposit(login, "2000.00")

    def work(n):
        if n == 0:
            return trigger_deposit(login=login, amount=Decimal("2000.00"), deal_id=deal)
        return bonus_assign(login=login, campaign=manual, actor=admin, deal_id=deal)

    results, errors = run_at_once(work, threads=2)

    assert len(granted(login)) == 1
    # Whichever came second was told, not silently stacked.
    assert len(errors) + sum(1 for r in results if r == []) == 1
    for error in errors:
        assert isinstance(error, IneligibleError)
        assert [f.code for f in error.failures] == ["stacking_exclusive"]
    assert server(login).credit == granted(login)[0][1]
