"""The monitor end to end: what happens on the simulated MT5 server becomes bonus work, once."""

import logging
import random
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import AccountEvent, MonitoredAccount
from accounts.services import (
    account_events_dispatch,
    monitor_discover,
    monitor_reset_errors,
    monitor_sweep,
    monitor_test_deal,
)
from accounts.tasks import monitor_sweep_task
from bonuses.models import Bonus, CreditIntent
from bonuses.services import intents_resolve, trigger_deposit
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal, SimulatorKnobs
from gateways.mt5 import DealAction, get_mt5_gateway
from gateways.mt5.simulated import seed_demo_accounts


def server(login):
    return get_mt5_gateway().get_accounts([login])[login]


@pytest.fixture
def watched(db, mt5):
    """The demo accounts 10001-10010 on the server, registered for monitoring."""
    seed_demo_accounts()
    monitor_discover()
    return mt5


@pytest.fixture
def watch(mt5):
    """`watch(login)`: register an account made by the test as one opened a month ago, so
    the monitor watches it from now on (its opening balance is history)."""

    def register(login):
        month_ago = timezone.now() - timedelta(days=30)
        SimulatedMT5Account.objects.filter(pk=login).update(registered_at=month_ago)
        monitor_discover()
        return MonitoredAccount.objects.get(login=login)

    return register


def test_a_test_deposit_is_detected_by_the_next_sweep_and_granted_once(watched, campaign_factory):
    campaign_factory(bonus_type="A", percentage="50", trigger_type="auto_deposit")
    credit_before = server(10001).credit

    deal_id = monitor_test_deal(login=10001, amount=Decimal("200.00"))
    result = monitor_sweep()
    monitor_sweep()

    [bonus] = Bonus.objects.filter(login=10001)
    assert (bonus.status, bonus.amount, bonus.deposit_deal_id) == (
        "active",
        Decimal("100.00"),
        deal_id,
    )
    assert server(10001).credit == credit_before + Decimal("100.00")
    assert result.deposits == 1
    assert AccountEvent.objects.get(ticket=deal_id).status == AccountEvent.Status.DONE


def test_the_demo_seed_history_grants_nothing_when_the_monitor_starts(watched, campaign_factory):
    campaign_factory(bonus_type="A", percentage="50")

    result = monitor_sweep()

    assert result.accounts == 10
    assert result.deposits == 0
    assert not Bonus.objects.exists()


def test_a_quiet_sweep_records_nothing_and_changes_no_row(watched):
    monitor_sweep()
    before = list(MonitoredAccount.objects.values_list("login", "state_at", "deal_cursor"))

    result = monitor_sweep()

    assert (result.changed, result.deposits, result.errors) == (0, 0, 0)
    assert list(MonitoredAccount.objects.values_list("login", "state_at", "deal_cursor")) == before


def test_a_closed_trade_with_profit_raises_the_balance_and_grants_nothing(
    account, watch, mt5, campaign_factory
):
    login = account(balance="1000.00")
    watch(login)
    campaign_factory(bonus_type="A", percentage="50")
    ticket = mt5.open_position(login, symbol="EURUSD", side="buy", volume="1.00")
    mt5.close_position(ticket, profit="250.00")

    result = monitor_sweep()

    assert server(login).balance == Decimal("1250.00")
    assert (result.deposits, result.trades) == (0, 1)
    assert not Bonus.objects.exists()
    assert MonitoredAccount.objects.get(login=login).balance == Decimal("1250.00")


def test_a_stop_out_compensation_deal_grants_nothing(account, watch, campaign_factory):
    login = account(balance="0.00")
    watch(login)
    campaign_factory(bonus_type="A", percentage="50")
    SimulatedMT5Deal.objects.create(
        account_id=login, action=DealAction.SO_COMPENSATION, profit=Decimal("35.00")
    )
    SimulatedMT5Account.objects.filter(pk=login).update(balance=Decimal("35.00"))

    result = monitor_sweep()

    assert (result.changed, result.deposits) == (1, 0)
    assert not Bonus.objects.exists()
    assert not AccountEvent.objects.exists()


def test_the_systems_own_conversion_deal_is_not_seen_as_a_deposit(
    account, watch, mt5, campaign_factory
):
    login = account(balance="1000.00")
    watch(login)
    campaign_factory(bonus_type="C", percentage="10", convert_per_lot="10.00", stacking="stackable")
    campaign_factory(bonus_type="A", percentage="50", name="Deposit match", stacking="stackable")
    monitor_test_deal(login=login, amount=Decimal("500.00"))
    monitor_sweep()  # grants both: C 50.00 and A 250.00 on the 500.00 deposit
    assert Bonus.objects.filter(login=login).count() == 2
    position = mt5.open_position(login, symbol="EURUSD", side="buy", volume="2.00")
    mt5.close_position(position, profit="0.00")  # 2 lots converts 20.00 of Type C credit
    balance_before = server(login).balance

    monitor_sweep()  # the trade converts: a balance deal of 20.00 carrying the op id
    conversion = CreditIntent.objects.get(kind="balance_in")
    monitor_sweep()  # the conversion's own deal, seen by the monitor

    assert server(login).balance == balance_before + Decimal("20.00")
    assert SimulatedMT5Deal.objects.filter(comment=conversion.op_id, action="balance").exists()
    assert not AccountEvent.objects.filter(kind="deposit", amount=Decimal("20.00")).exists()
    assert Bonus.objects.filter(login=login).count() == 2


def test_a_partial_withdrawal_reduces_credit_proportionally_and_recomputes_leverage(
    account, watch, campaign_factory
):
    login = account(balance="0.00", leverage=500)
    watch(login)
    campaign_factory(bonus_type="A", percentage="50")
    monitor_test_deal(login=login, amount=Decimal("1000.00"))
    monitor_sweep()
    assert (server(login).credit, server(login).leverage) == (Decimal("500.00"), 333)

    monitor_test_deal(login=login, amount=Decimal("-250.00"))
    result = monitor_sweep()

    bonus = Bonus.objects.get(login=login)
    assert result.withdrawals == 1
    assert bonus.credit_remaining == Decimal("375.00")  # 500 * (1000 - 250) / 1000
    assert server(login).credit == Decimal("375.00")
    assert server(login).leverage == 333  # floor(500 / (1 + 375 / 750))
    event = AccountEvent.objects.get(kind="withdrawal")
    assert (event.amount, event.balance_before) == (Decimal("250.00"), Decimal("1000.00"))


def test_a_full_withdrawal_cancels_the_bonus(account, watch, campaign_factory):
    login = account(balance="0.00", leverage=500)
    watch(login)
    campaign_factory(bonus_type="A", percentage="50")
    monitor_test_deal(login=login, amount=Decimal("1000.00"))
    monitor_sweep()

    monitor_test_deal(login=login, amount=Decimal("-1000.00"))
    monitor_sweep()

    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.cancel_reason) == ("cancelled", "withdrawal")
    assert (server(login).credit, server(login).leverage) == (0, 500)


def test_equity_falling_to_the_credit_triggers_drawdown_protection(
    account, watch, mt5, campaign_factory
):
    login = account(balance="0.00", leverage=500)
    watch(login)
    campaign_factory(bonus_type="B", percentage="100")
    monitor_test_deal(login=login, amount=Decimal("500.00"))
    monitor_sweep()
    assert server(login).credit == Decimal("500.00")
    position = mt5.open_position(login, symbol="EURUSD", side="buy", volume="1.00")

    mt5.set_position_profit(position, "-499.00")
    assert monitor_sweep().drawdowns == 0  # equity 501.00 > credit 500.00
    mt5.set_position_profit(position, "-500.00")
    result = monitor_sweep()
    monitor_sweep()

    assert result.drawdowns == 1
    assert AccountEvent.objects.filter(kind="drawdown").count() == 1
    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.cancel_reason) == ("cancelled", "drawdown")
    assert server(login).credit == 0
    assert not mt5.get_positions([login])


def test_a_new_account_is_discovered_and_gets_its_registration_bonus(mt5, campaign_factory):
    campaign_factory(trigger_type="registration", fixed_amount="25.00")
    login = mt5.add_account(balance="0.00")

    assert monitor_discover() == 1
    monitor_sweep()

    bonus = Bonus.objects.get(login=login)
    assert (bonus.trigger, bonus.amount, bonus.status) == (
        "registration",
        Decimal("25.00"),
        "active",
    )
    assert monitor_discover() == 0


def test_a_new_accounts_first_deposit_before_discovery_still_counts(mt5, campaign_factory):
    campaign_factory(bonus_type="A", percentage="50")
    login = mt5.add_account(balance="0.00", leverage=500)
    mt5.post_balance(login, Decimal("300.00"), comment="first deposit")

    monitor_discover()
    monitor_sweep()

    assert Bonus.objects.get(login=login).amount == Decimal("150.00")


def test_an_account_failing_five_sweeps_in_a_row_is_paused_once_and_reset_resumes_it(
    account, watch, caplog
):
    login = account(balance="100.00")
    watch(login)
    SimulatedMT5Account.objects.filter(pk=login).delete()  # the server no longer answers for it

    with caplog.at_level(logging.WARNING, logger="accounts.services.monitor"):
        for _ in range(7):
            monitor_sweep()

    row = MonitoredAccount.objects.get(login=login)
    assert (row.status, row.consecutive_errors) == ("paused", 5)
    assert "does not know" in row.last_error
    assert [r for r in caplog.records if "paused account" in r.getMessage()].__len__() == 1

    row = monitor_reset_errors(login=login)
    assert (row.status, row.consecutive_errors) == ("active", 0)


def test_an_event_that_fails_stays_pending_and_is_retried_after_its_backoff(
    watched, campaign_factory, monkeypatch, time_machine
):
    campaign_factory(bonus_type="A", percentage="50")
    import bonuses.services as bonus_services

    real = bonus_services.trigger_deposits
    monkeypatch.setattr(bonus_services, "trigger_deposits", _raise)
    deal_id = monitor_test_deal(login=10002, amount=Decimal("100.00"))
    monitor_sweep()
    event = AccountEvent.objects.get(ticket=deal_id)
    assert (event.status, event.attempts) == ("pending", 1)
    assert "boom" in event.last_error

    monkeypatch.setattr(bonus_services, "trigger_deposits", real)
    assert account_events_dispatch().handled == 0  # still backing off
    time_machine.move_to(timezone.now() + timedelta(minutes=1))
    assert account_events_dispatch().handled == 1
    assert Bonus.objects.filter(login=10002).count() == 1
    assert account_events_dispatch().handled == 0  # never handled twice


def _raise(*args, **kwargs):
    raise RuntimeError("boom")


def test_a_sweep_killed_between_recording_and_dispatching_loses_nothing(
    watched, campaign_factory, monkeypatch
):
    campaign_factory(bonus_type="A", percentage="50")
    import accounts.services.events as events

    real = events.account_events_dispatch

    def killed(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(events, "account_events_dispatch", killed)
    deal_id = monitor_test_deal(login=10003, amount=Decimal("100.00"))
    with pytest.raises(SystemExit):
        monitor_sweep()
    assert AccountEvent.objects.get(ticket=deal_id).status == "pending"
    assert not Bonus.objects.filter(login=10003).exists()

    monkeypatch.setattr(events, "account_events_dispatch", real)
    monitor_sweep()

    assert Bonus.objects.filter(login=10003, deposit_deal_id=deal_id).count() == 1


def test_thirty_percent_faults_for_fifty_sweeps_then_every_deposit_is_granted_once(
    watched, campaign_factory, time_machine
):
    random.seed(7)
    campaign_factory(bonus_type="A", percentage="10", one_per_account=False)
    monitor_sweep()
    knobs = SimulatorKnobs.objects.create(server="mt5", error_rate=Decimal("0.30"))
    server_side = get_mt5_gateway()
    deposits = []
    for sweep in range(50):
        login = 10001 + sweep % 10
        if sweep % 3 == 0:  # the client's deposit itself never fails: it is not our call
            deposits.append(
                (login, server_side._move_money(login, "100.00", comment="", action="balance"))
            )
        monitor_sweep_task()  # raises nothing, whatever fails underneath
        time_machine.move_to(timezone.now() + timedelta(seconds=5))

    knobs.error_rate = 0
    knobs.save()
    for _ in range(5):
        time_machine.move_to(timezone.now() + timedelta(hours=2))
        monitor_sweep()
        intents_resolve()

    for login, deal_id in deposits:
        assert Bonus.objects.filter(login=login, deposit_deal_id=deal_id).count() == 1
        assert Bonus.objects.get(login=login, deposit_deal_id=deal_id).status == "active"
    assert not MonitoredAccount.objects.filter(status="paused").exists()
    assert not AccountEvent.objects.exclude(status="done").exists()
    granted = sum(b.amount for b in Bonus.objects.filter(status="active"))
    assert granted == Decimal("10.00") * len(deposits)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_the_same_time_still_grant_once(mt5, campaign_factory):
    seed_demo_accounts()
    monitor_discover()
    campaign_factory(bonus_type="A", percentage="50")
    deal_ids = [
        monitor_test_deal(login=login, amount=Decimal("100.00")) for login in (10001, 10004)
    ]
    start = threading.Barrier(2)
    errors = []

    def sweep():
        try:
            start.wait(timeout=10)
            monitor_sweep()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    for deal_id in deal_ids:
        assert Bonus.objects.filter(deposit_deal_id=deal_id).count() == 1
        assert AccountEvent.objects.filter(ticket=deal_id).count() == 1
    assert server(10001).credit - Decimal("0.00") >= Decimal("50.00")
    assert CreditIntent.objects.filter(kind="credit_in", login=10001).count() == 1


def test_the_deposit_trigger_api_and_the_monitor_grant_one_deposit_once(watched, campaign_factory):
    campaign_factory(bonus_type="A", percentage="50")
    deal_id = monitor_test_deal(login=10006, amount=Decimal("100.00"))
    trigger_deposit(login=10006, amount=Decimal("100.00"), deal_id=deal_id, source="crm")

    monitor_sweep()

    assert Bonus.objects.filter(login=10006).count() == 1
