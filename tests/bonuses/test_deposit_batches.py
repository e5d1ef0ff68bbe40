"""Deposits the monitor saw are granted in batches (`trigger_deposits`): one transaction records
many grants, their credits go out together, their outcomes settle together. What a client,
the staff and the audit trail see is what the one-by-one path gave: one bonus per deposit
and campaign, one credit deal each, the leverage set, every refusal on its own bonus."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AccountEvent, AuditEvent
from accounts.services import account_events_dispatch, audit_verify, monitor_sweep
from bonuses.models import Bonus, CreditIntent
from bonuses.services import Deposit, trigger_deposit, trigger_deposits
from campaigns.models import StackingSkip
from gateways.errors import PermanentGatewayError
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal
from gateways.mt5 import DealAction
from gateways.mt5.simulated import SimulatedMT5Gateway
from tests.bonuses.conftest import deposited_accounts

pytestmark = pytest.mark.django_db


def _credit_deals(logins) -> list[int]:
    return list(
        SimulatedMT5Deal.objects.filter(account_id__in=logins, action=DealAction.CREDIT)
        .order_by("account_id")
        .values_list("account_id", flat=True)
    )


def test_a_sweep_of_many_deposits_gives_each_its_bonus_credit_and_leverage_once(
    campaign_factory,
):
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(25)

    monitor_sweep()

    bonuses = Bonus.objects.filter(login__in=logins)
    assert sorted(bonuses.values_list("login", flat=True)) == logins
    assert set(bonuses.values_list("status", "amount", "credit_remaining")) == {
        ("active", Decimal("100.00"), Decimal("100.00"))
    }
    assert _credit_deals(logins) == logins  # one credit deal each, none twice
    # Type A: 1:300 / (50% + 1) = 1:200, on the server and on the bonus.
    assert set(
        SimulatedMT5Account.objects.filter(pk__in=logins).values_list("leverage", flat=True)
    ) == {200}
    assert set(bonuses.values_list("original_leverage", "adjusted_leverage")) == {(300, 200)}
    assert not AccountEvent.objects.exclude(status="done").exists()
    # Every bonus's story, in order, on an intact chain.
    for bonus in bonuses:
        assert list(
            AuditEvent.objects.filter(object_type="bonuses.bonus", object_id=str(bonus.pk))
            .order_by("seq")
            .values_list("action", flat=True)
        ) == ["bonus.granted", "bonus.activated", "bonus.leverage_adjusted"]
    assert audit_verify().intact


def test_the_queries_of_a_batch_of_grants_do_not_grow_with_its_deposits(campaign_factory):
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(45)
    monitor_sweep(dispatch=False)  # the deposits recorded, not granted yet
    events = list(AccountEvent.objects.filter(kind="deposit").order_by("login"))
    assert len(events) == 45

    def grant(part):
        deposits = [Deposit(login=e.login, amount=e.amount, deal_id=e.ticket) for e in part]
        with CaptureQueriesContext(connection) as queries:
            trigger_deposits(deposits)
        # The engine's own queries: the simulated MT5 server's (its tables) are MT5's work.
        # The engine's own statements: the simulated MT5 server's (its tables, and the
        # savepoints of its transactions inside the test's) are MT5's work.
        return sum(1 for query in queries if not re.search(r'"gateways_|SAVEPOINT', query["sql"]))

    few, many = grant(events[:5]), grant(events[5:])

    assert Bonus.objects.filter(status="active").count() == 45
    assert _credit_deals(logins) == logins
    # The one-by-one path took some 50 queries a deposit; a batch takes the same few dozen
    # whatever its size, plus the claim of each write just before it is sent (two a grant:
    # its credit and its leverage).
    assert many - few <= 2 * (40 - 5) + 5, (few, many)


def test_a_credit_the_server_refuses_fails_its_own_bonus_and_the_others_go_through(
    campaign_factory, faulty_mt5
):
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(4)
    faulty_mt5.fail_next("post_credit", PermanentGatewayError)  # the first credit sent

    monitor_sweep()

    statuses = sorted(Bonus.objects.filter(login__in=logins).values_list("status", flat=True))
    assert statuses == ["active", "active", "active", "failed"]
    failed = Bonus.objects.get(login__in=logins, status="failed")
    assert failed.cancel_reason == "credit refused by the server"
    assert SimulatedMT5Account.objects.get(pk=failed.login).leverage == 300  # left alone
    assert len(_credit_deals(logins)) == 3
    assert audit_verify().intact


def test_a_lost_credit_answer_in_a_batch_is_looked_up_and_never_sent_twice(
    campaign_factory, faulty_mt5
):
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(3)
    faulty_mt5.fail_next("post_credit", after_write=True)  # credited, but the answer lost

    monitor_sweep()

    unknown = CreditIntent.objects.get(login__in=logins, status="unknown")
    assert Bonus.objects.get(pk=unknown.bonus_id).status == "pending"
    from bonuses.services import intents_resolve

    intents_resolve()
    assert set(Bonus.objects.filter(login__in=logins).values_list("status", flat=True)) == {
        "active"
    }
    assert _credit_deals(logins) == logins  # the lost one was found by its comment
    assert faulty_mt5.calls["post_credit"] == 3


def test_one_deposit_that_breaks_its_grant_fails_alone_and_is_retried(
    campaign_factory, monkeypatch
):
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(4)
    bad = logins[2]
    import bonuses.services.grants as grants

    real = grants._deposit_grant_plan

    def broken(**kwargs):
        if kwargs["deposit"].login == bad:
            raise RuntimeError("a bug on one account")
        return real(**kwargs)

    monkeypatch.setattr(grants, "_deposit_grant_plan", broken)
    monitor_sweep()

    granted = set(Bonus.objects.values_list("login", flat=True))
    assert granted == set(logins) - {bad}
    event = AccountEvent.objects.get(login=bad, kind="deposit")
    assert event.status == "pending" and "a bug on one account" in event.last_error

    monkeypatch.setattr(grants, "_deposit_grant_plan", real)
    AccountEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    assert account_events_dispatch().handled == 1
    assert set(Bonus.objects.values_list("login", flat=True)) == set(logins)
    assert _credit_deals(logins) == logins


def test_two_deposits_of_one_account_in_one_dispatch_are_granted_in_order(campaign_factory):
    campaign_factory(bonus_type="B", percentage="10", one_per_account=False)
    [login] = deposited_accounts(1, amount="100.00")
    SimulatedMT5Gateway().post_balance(login, Decimal("300.00"), comment="")

    monitor_sweep()

    assert list(
        Bonus.objects.filter(login=login).order_by("pk").values_list("amount", flat=True)
    ) == [
        Decimal("10.00"),
        Decimal("30.00"),
    ]
    assert SimulatedMT5Account.objects.get(pk=login).credit == Decimal("40.00")


def test_stacking_rules_hold_inside_a_batch(campaign_factory):
    first = campaign_factory(bonus_type="B", percentage="10", priority=5, stacking="exclusive")
    second = campaign_factory(bonus_type="B", percentage="20", priority=1)
    logins = deposited_accounts(3)

    monitor_sweep()

    assert set(Bonus.objects.values_list("campaign_id", flat=True)) == {first.pk}
    assert Bonus.objects.count() == 3
    skips = StackingSkip.objects.filter(campaign=second)
    assert sorted(skips.values_list("login", flat=True)) == logins
    assert set(skips.values_list("taken_by_id", flat=True)) == {first.pk}


def test_a_deposit_given_twice_in_one_batch_and_again_later_gives_one_bonus(campaign_factory):
    campaign_factory(bonus_type="A", percentage="50")
    [login] = deposited_accounts(1)
    deal = SimulatedMT5Deal.objects.filter(account_id=login).latest("ticket")
    deposit = Deposit(login=login, amount=deal.profit, deal_id=deal.ticket, source="test")

    first, again = trigger_deposits([deposit, deposit])
    later = trigger_deposit(
        login=login, amount=deal.profit, deal_id=deal.ticket, deal_from_server=True
    )

    assert len(first) == 1 and first == again == later
    assert Bonus.objects.count() == 1
    assert _credit_deals([login]) == [login]
