"""Granting: the amount formula, eligibility, and the deposit/registration/promo triggers."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import AuditEvent
from accounts.roles import Role
from bonuses.models import Bonus, CreditIntent, DepositSeen
from bonuses.services import (
    IneligibleError,
    bonus_assign,
    check_eligibility_all,
    trigger_deposit,
    trigger_promo_code,
    trigger_registration,
)
from core.errors import ApplicationError
from gateways.mt5 import get_mt5_gateway


def server(login):
    return get_mt5_gateway().get_accounts([login])[login]


def codes(failures):
    return {failure.code for failure in failures}


# --- The formula -------------------------------------------------------------------------------


def test_a_1000_deposit_at_50_percent_type_a_on_1_500_gives_500_credit_and_1_333(
    account, campaign_factory, deposit_deal
):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50")

    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"), deal_id=deposit_deal(login))

    assert bonus.status == Bonus.Status.ACTIVE
    assert bonus.amount == Decimal("500.00")
    assert bonus.credit_remaining == Decimal("500.00")
    assert (bonus.original_leverage, bonus.adjusted_leverage) == (500, 333)
    assert server(login).credit == Decimal("500.00")
    assert server(login).leverage == 333


def test_100_percent_type_a_on_1_100_gives_1_50(account, campaign_factory):
    login = account(balance="400.00", leverage=100)
    campaign_factory(bonus_type="A", percentage="100")

    [bonus] = trigger_deposit(login=login, amount=Decimal("400.00"))

    assert bonus.amount == Decimal("400.00")
    assert server(login).leverage == 50


def test_the_amount_is_capped_at_max_bonus_and_rounded_down_to_cents(account, campaign_factory):
    capped = account(balance="1000.00")
    odd = account(balance="33.33")
    campaign_factory(bonus_type="B", percentage="50", max_bonus="120.00", one_per_account=False)

    [big] = trigger_deposit(login=capped, amount=Decimal("1000.00"))
    [small] = trigger_deposit(login=odd, amount=Decimal("33.33"))

    assert big.amount == Decimal("120.00")
    assert small.amount == Decimal("16.66")  # 16.665 rounded down
    assert server(odd).credit == Decimal("16.66")


def test_type_b_leaves_the_leverage_alone(account, campaign_factory):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="B", percentage="50")

    trigger_deposit(login=login, amount=Decimal("1000.00"))

    assert server(login).leverage == 500
    assert server(login).credit == Decimal("500.00")


def test_type_c_needs_amount_over_convert_per_lot_lots(account, campaign_factory):
    login = account(balance="400.00")
    campaign_factory(bonus_type="C", percentage="50", convert_per_lot="10.00")

    [bonus] = trigger_deposit(login=login, amount=Decimal("400.00"))

    assert bonus.amount == Decimal("200.00")
    assert bonus.lots_required == Decimal("20.00")


def test_a_grant_is_audited_with_the_bonus_and_the_account(account, campaign_factory):
    login = account()
    campaign_factory()

    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))

    actions = list(
        AuditEvent.objects.filter(object_id=str(bonus.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions[:2] == ["bonus.granted", "bonus.activated"]
    granted = AuditEvent.objects.get(object_id=str(bonus.pk), action="bonus.granted")
    assert granted.actor_label == "system"
    assert granted.after["bonus"]["status"] == "pending"
    assert granted.after["account"]["balance"] == "1000.00"
    assert granted.mt5_login == login


# --- Eligibility ---------------------------------------------------------------------------


def test_eligibility_returns_every_failure_not_just_the_first(account, campaign_factory):
    login = account(group="real\\standard", country="Cyprus", lead_source="")
    campaign = campaign_factory(
        target_groups=["real\\vip"],
        target_countries=["Germany"],
        min_deposit="500.00",
        agent_codes=["IB7"],
        max_concurrent=1,
    )
    Bonus.objects.create(
        campaign=campaign,
        login=login,
        bonus_type="A",
        status="active",
        trigger="manual",
        amount=Decimal("10.00"),
        credit_remaining=Decimal("10.00"),
    )

    failures = check_eligibility_all(login=login, campaign=campaign, deposit_amount=Decimal("100"))

    assert codes(failures) == {
        "group_mismatch",
        "country_mismatch",
        "deposit_below_min",
        "agent_code_mismatch",
        "duplicate_bonus",
        "max_concurrent",
    }
    assert all(failure.overridable for failure in failures)


def test_the_non_overridable_failures_are_flagged_so(mt5, campaign_factory):
    from datetime import timedelta

    from django.utils import timezone

    campaign = campaign_factory(status="paused", ends_at=timezone.now() - timedelta(days=1))

    failures = check_eligibility_all(login=424242, campaign=campaign)

    assert codes(failures) == {"campaign_status", "campaign_ended", "account_not_found"}
    assert not any(failure.overridable for failure in failures)


def test_a_campaign_that_has_not_started_is_reported_as_campaign_ended(account, campaign_factory):
    from datetime import timedelta

    from django.utils import timezone

    campaign = campaign_factory(starts_at=timezone.now() + timedelta(days=1))

    [failure] = check_eligibility_all(login=account(), campaign=campaign)

    assert failure.code == "campaign_ended"
    assert "starts" in failure.message


def test_deposit_above_max_and_group_wildcards(account, campaign_factory):
    login = account(group="real\\standard")
    campaign = campaign_factory(target_groups=["real\\*"], max_deposit="500.00")

    failures = check_eligibility_all(login=login, campaign=campaign, deposit_amount=Decimal("501"))

    assert codes(failures) == {"deposit_above_max"}


def test_an_ineligible_manual_assign_raises_409_with_every_failure(
    account, campaign_factory, deposit, make_user
):
    login = account(country="Cyprus", group="real\\standard")
    campaign = campaign_factory(target_countries=["Germany"], target_groups=["real\\vip"])
    deal = deposit(login, "100.00")

    with pytest.raises(IneligibleError) as raised:
        bonus_assign(
            login=login,
            campaign=campaign,
            deposit_amount=Decimal("100"),
            deal_id=deal,
            actor=make_user(Role.SUPPORT_AGENT),
        )

    assert raised.value.status_code == 409
    assert raised.value.code == "ineligible"
    assert {f["code"] for f in raised.value.extra["failures"]} == {
        "country_mismatch",
        "group_mismatch",
    }
    assert not Bonus.objects.exists()
    assert server(login).credit == 0


def test_override_assigns_and_records_who_overrode_what_and_why(
    account, campaign_factory, make_user, deposit
):
    agent = make_user(Role.SUPPORT_AGENT)
    login = account(country="Cyprus")
    campaign = campaign_factory(bonus_type="B", target_countries=["Germany"])

    bonus = bonus_assign(
        login=login,
        campaign=campaign,
        deposit_amount=Decimal("100"),
        deal_id=deposit(login, "100.00"),
        override_eligibility=True,
        reason="VIP client, approved by desk",
        actor=agent,
    )

    assert bonus.status == Bonus.Status.ACTIVE
    assert bonus.trigger == "manual"
    assert bonus.granted_by == agent
    assert bonus.override_reason == "VIP client, approved by desk"
    assert [f["code"] for f in bonus.overridden_failures] == ["country_mismatch"]
    event = AuditEvent.objects.get(object_id=str(bonus.pk), action="bonus.granted")
    assert event.actor_id == agent.pk
    assert event.reason == "VIP client, approved by desk"
    assert server(login).credit == Decimal("50.00")


def test_a_non_overridable_failure_blocks_even_with_override(
    mt5, account, campaign_factory, deposit, make_user
):
    login = account(country="Cyprus")
    campaign = campaign_factory(status="paused", target_countries=["Germany"])

    with pytest.raises(IneligibleError) as raised:
        bonus_assign(
            login=login,
            campaign=campaign,
            deal_id=deposit(login, "100.00"),
            override_eligibility=True,
            actor=make_user(Role.SUPER_ADMIN),
        )

    assert {f["code"] for f in raised.value.extra["failures"]} >= {"campaign_status"}
    assert not Bonus.objects.exists()


def test_assigning_to_an_unknown_login_is_an_eligibility_failure(mt5, campaign_factory, make_user):
    with pytest.raises(IneligibleError) as raised:
        bonus_assign(
            login=999999,
            campaign=campaign_factory(),
            deposit_amount=Decimal("100"),
            deal_id=1,
            override_eligibility=True,
            actor=make_user(Role.SUPER_ADMIN),
        )

    assert [f["code"] for f in raised.value.extra["failures"]] == ["account_not_found"]


def test_a_zero_amount_grants_nothing_and_says_why(account, campaign_factory, make_user):
    with pytest.raises(ApplicationError) as raised:
        bonus_assign(
            login=account(), campaign=campaign_factory(), actor=make_user(Role.SUPER_ADMIN)
        )

    assert raised.value.code == "bonus_amount_zero"
    assert not Bonus.objects.exists()


# --- Deposit trigger -----------------------------------------------------------------------


def test_the_same_deposit_deal_sent_10_times_grants_once(account, campaign_factory, deposit_deal):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", one_per_account=False)
    deal = deposit_deal(login)

    answers = [
        trigger_deposit(login=login, amount=Decimal("1000.00"), deal_id=deal) for _ in range(10)
    ]

    assert Bonus.objects.count() == 1
    assert all([b.pk for b in answer] == [answers[0][0].pk] for answer in answers)
    assert DepositSeen.objects.filter(login=login, deal_id=deal).count() == 1
    assert CreditIntent.objects.filter(kind="credit_in").count() == 1
    assert server(login).credit == Decimal("500.00")


def test_without_a_deal_id_each_call_takes_in_one_real_deposit_of_that_amount(
    account, campaign_factory, deposit
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", one_per_account=False)
    first, second = deposit(login, "100.00"), deposit(login, "100.00")

    granted = [trigger_deposit(login=login, amount=Decimal("100.00")) for _ in range(3)]

    assert Bonus.objects.count() == 2
    assert {granted[0][0].deposit_deal_id, granted[1][0].deposit_deal_id} == {first, second}
    assert [b.pk for b in granted[2]] == [granted[0][0].pk]  # both taken in: nothing new
    assert server(login).credit == Decimal("100.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_deposit_deal_from_10_threads_at_once_grants_once(
    account, campaign_factory, deposit_deal
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", one_per_account=False)
    deal = deposit_deal(login)
    threads_count = 10
    start = threading.Barrier(threads_count)
    answers, errors = [], []

    def deposit():
        try:
            start.wait(timeout=10)
            answers.append(
                [b.pk for b in trigger_deposit(login=login, amount=Decimal("1000"), deal_id=deal)]
            )
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deposit) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(answers) == threads_count
    [bonus] = Bonus.objects.all()
    assert all(answer == [bonus.pk] for answer in answers)
    assert CreditIntent.objects.filter(kind="credit_in").count() == 1
    assert server(login).credit == Decimal("500.00")


def test_several_matching_stackable_campaigns_each_grant_on_one_deposit(
    account, campaign_factory, deposit_deal
):
    login = account(balance="1000.00", lead_source="IB42")
    campaign_factory(bonus_type="B", percentage="10", stacking="stackable")
    campaign_factory(bonus_type="B", percentage="20", stacking="stackable")
    campaign_factory(
        bonus_type="B",
        percentage="5",
        trigger_type="agent_code",
        agent_codes=["ib42"],
        stacking="stackable",
    )
    campaign_factory(bonus_type="B", percentage="7", trigger_type="agent_code", agent_codes=["X"])
    campaign_factory(bonus_type="B", percentage="3", agent_codes=["OTHER"])  # auto, wrong code
    campaign_factory(bonus_type="B", percentage="9", trigger_type="promo_code", promo_code="P")

    bonuses = trigger_deposit(login=login, amount=Decimal("1000.00"), deal_id=deposit_deal(login))

    assert sorted(b.amount for b in bonuses) == [
        Decimal("50.00"),
        Decimal("100.00"),
        Decimal("200.00"),
    ]
    assert {b.trigger for b in bonuses} == {"auto_deposit", "agent_code"}
    assert server(login).credit == Decimal("350.00")


def test_several_campaigns_grant_only_within_max_concurrent(account, campaign_factory):
    login = account(balance="1000.00")
    for _ in range(3):
        campaign_factory(bonus_type="B", percentage="10", max_concurrent=2, stacking="stackable")

    bonuses = trigger_deposit(login=login, amount=Decimal("1000.00"))

    assert len(bonuses) == 2
    assert server(login).credit == Decimal("200.00")


def test_a_deposit_outside_the_campaign_rules_grants_nothing(
    account, campaign_factory, deposit_deal
):
    login = account(balance="50.00")
    campaign_factory(min_deposit="100.00")

    assert trigger_deposit(login=login, amount=Decimal("50.00"), deal_id=deposit_deal(login)) == []
    assert server(login).credit == 0


def test_one_per_account_grants_a_campaign_once_across_deposits(account, campaign_factory, deposit):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", one_per_account=True)

    trigger_deposit(login=login, amount=Decimal("500.00"), deal_id=deposit(login, "500.00"))
    again = trigger_deposit(login=login, amount=Decimal("500.00"), deal_id=deposit(login, "500"))

    assert again == []
    assert Bonus.objects.count() == 1


# --- Registration and promo code -----------------------------------------------------------


def test_registration_grants_the_fixed_amount_once(account, campaign_factory):
    login = account(balance="0")
    campaign_factory(
        bonus_type="B", trigger_type="registration", fixed_amount="25.00", one_per_account=False
    )

    [bonus] = trigger_registration(login=login)
    again = trigger_registration(login=login)

    assert bonus.amount == Decimal("25.00")
    assert bonus.trigger == "registration"
    assert again == []
    assert server(login).credit == Decimal("25.00")


def test_a_promo_code_matches_case_insensitively(account, campaign_factory):
    login = account(balance="200.00")
    campaign_factory(bonus_type="B", trigger_type="promo_code", promo_code="Spring24")

    bonus = trigger_promo_code(login=login, code="  spring24 ", deposit_amount=Decimal("200"))

    assert bonus.trigger == "promo_code"
    assert bonus.amount == Decimal("100.00")
    assert server(login).credit == Decimal("100.00")


@pytest.mark.parametrize("status", ["paused", "draft", "ended", "archived"])
def test_an_unknown_or_inactive_promo_code_is_a_400(account, campaign_factory, status):
    campaign_factory(trigger_type="promo_code", promo_code="GONE", status=status)

    for code in ("GONE", "NOPE", ""):
        with pytest.raises(ApplicationError) as raised:
            trigger_promo_code(login=account(), code=code, deposit_amount=Decimal("100"))
        assert raised.value.code == "invalid_promo_code"
        assert raised.value.status_code == 400


def test_an_ineligible_promo_code_redemption_is_a_409(account, campaign_factory):
    campaign_factory(trigger_type="promo_code", promo_code="BIG", min_deposit="1000")

    with pytest.raises(IneligibleError):
        trigger_promo_code(login=account(balance="10.00"), code="big", deposit_amount=Decimal("10"))
