"""The credit ledger: outcomes of MT5 writes, resolving the unknown ones, reconciliation."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import time_machine
from django.core.management import call_command
from django.utils import timezone

from bonuses import tasks
from bonuses.models import Bonus, CreditIntent
from bonuses.services import (
    CreditDrift,
    bonus_cancel,
    credit_reconcile,
    drawdown_apply,
    intents_resolve,
    trade_deal_convert,
    trigger_deposit,
)
from bonuses.services.ledger import intent_execute
from gateways.errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError
from gateways.models import SimulatedMT5Deal
from gateways.mt5 import get_mt5_gateway


def server(login):
    return get_mt5_gateway().get_accounts([login])[login]


def credit_deals(login):
    return SimulatedMT5Deal.objects.filter(account_id=login, action="credit")


def test_a_timeout_after_the_write_leaves_an_unknown_intent_resolved_without_a_second_credit(
    faulty_mt5, account, campaign_factory, deposit_deal
):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50")
    faulty_mt5.fail_next("post_credit", UnknownOutcomeError, after_write=True)

    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"), deal_id=deposit_deal(login))

    intent = CreditIntent.objects.get(bonus=bonus, kind="credit_in")
    assert intent.status == CreditIntent.Status.UNKNOWN
    assert bonus.status == Bonus.Status.PENDING  # not active until the credit is confirmed
    assert server(login).credit == Decimal("500.00")  # the write did happen
    assert server(login).leverage == 500

    counts = intents_resolve()

    intent.refresh_from_db()
    bonus.refresh_from_db()
    assert counts["done"] >= 1
    assert intent.status == CreditIntent.Status.DONE
    assert intent.deal_id == credit_deals(login).get(comment=intent.op_id).ticket
    assert faulty_mt5.calls["post_credit"] == 1  # looked up, never sent again
    assert bonus.status == Bonus.Status.ACTIVE
    assert bonus.credit_remaining == Decimal("500.00")
    assert server(login).credit == Decimal("500.00")
    assert server(login).leverage == 333  # Type A follows once the bonus is active


def test_a_timeout_before_the_write_resends_once_and_succeeds(
    faulty_mt5, account, campaign_factory
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50")
    faulty_mt5.fail_next("post_credit", TransientGatewayError, after_write=False)

    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    assert CreditIntent.objects.get(bonus=bonus).status == CreditIntent.Status.UNKNOWN
    assert server(login).credit == 0

    intents_resolve()

    bonus.refresh_from_db()
    assert bonus.status == Bonus.Status.ACTIVE
    assert faulty_mt5.calls["post_credit"] == 2
    assert faulty_mt5.calls["find_deal_by_comment"] == 1  # looked before resending
    assert server(login).credit == Decimal("500.00")
    assert credit_deals(login).filter(profit__gt=0).count() == 1


def test_a_permanent_error_marks_the_intent_failed_and_the_bonus_is_not_active(
    faulty_mt5, account, campaign_factory
):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50")
    faulty_mt5.fail_next("post_credit", PermanentGatewayError)

    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))

    intent = CreditIntent.objects.get(bonus=bonus)
    assert intent.status == CreditIntent.Status.FAILED
    assert "PermanentGatewayError" in intent.last_error
    assert bonus.status == Bonus.Status.FAILED
    assert bonus.credit_remaining == 0
    assert server(login).credit == 0
    assert server(login).leverage == 500  # no credit, no leverage change
    assert intents_resolve()["operations"] == 0  # nothing left to retry


def test_a_write_someone_else_is_sending_is_not_sent_twice(mt5, account, campaign_factory):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50")
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    intent = CreditIntent.objects.get(bonus=bonus)
    CreditIntent.objects.filter(pk=intent.pk).update(
        status="pending", claimed_until=timezone.now() + timedelta(minutes=1)
    )

    assert intents_resolve()["operations"] == 0
    assert intent_execute(intent.pk).status == CreditIntent.Status.PENDING
    assert server(login).credit == Decimal("500.00")


def test_a_sender_that_died_mid_call_is_looked_up_after_its_claim_runs_out(
    mt5, account, campaign_factory
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50")
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    intent = CreditIntent.objects.get(bonus=bonus)
    # As if the sender crashed after the server took the write: pending, claimed, attempted.
    CreditIntent.objects.filter(pk=intent.pk).update(
        status="pending", deal_id=None, claimed_until=timezone.now() + timedelta(minutes=2)
    )

    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        intents_resolve()

    intent.refresh_from_db()
    assert intent.status == CreditIntent.Status.DONE
    assert intent.deal_id is not None
    assert server(login).credit == Decimal("500.00")


def test_a_conversion_whose_credit_out_times_out_pays_the_balance_only_when_resolved(
    faulty_mt5, account, campaign_factory
):
    login = account(balance="400.00")
    campaign_factory(bonus_type="C", percentage="50", convert_per_lot="10.00")
    trigger_deposit(login=login, amount=Decimal("400.00"))
    faulty_mt5.fail_next("post_credit", UnknownOutcomeError, after_write=True)

    [conversion] = trade_deal_convert(login=login, deal_ticket=9, lots=Decimal("5"))

    writes = CreditIntent.objects.filter(operation=conversion.operation).order_by("pk")
    assert [w.status for w in writes] == ["unknown", "pending"]
    assert server(login).balance == Decimal("400.00")

    intents_resolve()

    assert [w.status for w in writes.all()] == ["done", "done"]
    assert server(login).credit == Decimal("150.00")
    assert server(login).balance == Decimal("450.00")


def test_a_conversion_whose_credit_out_is_refused_never_pays_the_balance(
    faulty_mt5, account, campaign_factory
):
    login = account(balance="400.00")
    campaign_factory(bonus_type="C", percentage="50", convert_per_lot="10.00")
    trigger_deposit(login=login, amount=Decimal("400.00"))
    faulty_mt5.fail_next("post_credit", PermanentGatewayError)

    [conversion] = trade_deal_convert(login=login, deal_ticket=9, lots=Decimal("5"))

    writes = CreditIntent.objects.filter(operation=conversion.operation).order_by("pk")
    assert [w.status for w in writes] == ["failed", "failed"]
    assert "abandoned" in writes[1].last_error
    assert server(login).balance == Decimal("400.00")
    assert server(login).credit == Decimal("200.00")


def test_drawdown_retries_the_credit_removal_until_the_server_settles(
    faulty_mt5, account, campaign_factory
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50")
    trigger_deposit(login=login, amount=Decimal("1000.00"))
    ticket = faulty_mt5.open_position(login, symbol="EURUSD", side="buy", volume="1.00")
    faulty_mt5.set_position_profit(ticket, "-1000.00")
    faulty_mt5.fail_next("close_positions", TransientGatewayError)

    drawdown_apply(login=login)

    assert server(login).credit == Decimal("500.00")  # waits for the close, in order
    faulty_mt5.fail_next("post_credit", TransientGatewayError, times=1)
    intents_resolve()
    assert server(login).credit == Decimal("500.00")
    assert faulty_mt5.get_positions([login]) == []

    intents_resolve()

    assert server(login).credit == 0
    assert not CreditIntent.objects.filter(status__in=["pending", "unknown"]).exists()


def test_a_removal_larger_than_the_servers_credit_takes_only_what_is_there(
    mt5, account, campaign_factory
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50")
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    mt5.post_credit(login, Decimal("-200.00"), comment="dealer took some")

    bonus_cancel(bonus=bonus)

    intent = CreditIntent.objects.get(bonus=bonus, kind="credit_out")
    assert intent.status == CreditIntent.Status.DONE
    assert intent.amount == Decimal("300.00")
    assert server(login).credit == 0


# --- Reconciliation ------------------------------------------------------------------------


def test_reconcile_reports_drift_after_credit_changes_behind_our_back_and_changes_nothing(
    mt5, account, campaign_factory
):
    login = account(balance="1000.00")
    quiet = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50", one_per_account=False)
    trigger_deposit(login=login, amount=Decimal("1000.00"))
    trigger_deposit(login=quiet, amount=Decimal("1000.00"))
    assert credit_reconcile() == []
    mt5.post_credit(login, Decimal("-120.00"), comment="by hand")
    intents_before = CreditIntent.objects.count()

    drifts = credit_reconcile()

    assert drifts == [
        CreditDrift(
            login=login,
            ledger_credit=Decimal("500.00"),
            server_credit=Decimal("380.00"),
            drift=Decimal("-120.00"),
        )
    ]
    assert server(login).credit == Decimal("380.00")
    assert CreditIntent.objects.count() == intents_before


def test_reconcile_of_a_given_login_shows_credit_the_system_never_granted(mt5, account):
    login = account(credit="75.00")

    [drift] = credit_reconcile(logins=[login])

    assert (drift.ledger_credit, drift.server_credit, drift.drift) == (
        Decimal("0.00"),
        Decimal("75.00"),
        Decimal("75.00"),
    )


def test_the_reconcile_command_prints_the_drift_and_exits_cleanly(mt5, account, campaign_factory):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50")
    trigger_deposit(login=login, amount=Decimal("1000.00"))
    mt5.post_credit(login, Decimal("10.00"), comment="by hand")
    out = StringIO()

    call_command("reconcile_credit", "--login", str(login), stdout=out)

    assert f"{login}: ledger 500.00 server 510.00 drift +10.00" in out.getvalue()
    assert "1 account(s) with drift" in out.getvalue()
    assert server(login).credit == Decimal("510.00")


# --- Tasks ---------------------------------------------------------------------------------


def test_the_beat_tasks_call_their_services(faulty_mt5, account, campaign_factory):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50", bonus_expiry_days=1)
    faulty_mt5.fail_next("post_credit", UnknownOutcomeError, after_write=True)
    trigger_deposit(login=login, amount=Decimal("1000.00"))

    assert tasks.resolve_intents()["done"] == 1
    assert tasks.reconcile_credit() == 0
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert tasks.expire_due() == 1
    assert server(login).credit == 0
    out = StringIO()
    call_command("resolve_intents", stdout=out)
    assert "operations 0" in out.getvalue()
