"""Type C conversion, cancel, force-convert, withdrawal, drawdown and expiry."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from accounts.models import AuditEvent
from bonuses.models import Bonus, Conversion, CreditIntent
from bonuses.services import (
    bonus_cancel,
    bonus_force_convert,
    bonuses_expire_due,
    drawdown_apply,
    trade_deal_convert,
    trigger_deposit,
    withdrawal_apply,
)
from core.errors import ConflictError
from gateways.mt5 import get_mt5_gateway


def server(login):
    return get_mt5_gateway().get_accounts([login])[login]


@pytest.fixture
def type_c_bonus(account, campaign_factory, deposit_deal):
    """A 200.00 Type C bonus at 10.00 per lot on an account holding 400.00."""
    login = account(balance="400.00")
    campaign_factory(bonus_type="C", percentage="50", convert_per_lot="10.00")
    [bonus] = trigger_deposit(login=login, amount=Decimal("400.00"), deal_id=deposit_deal(login))
    return bonus


# --- Type C --------------------------------------------------------------------------------


def test_closing_5_lots_converts_50_credit_to_balance(type_c_bonus):
    login = type_c_bonus.login
    assert type_c_bonus.lots_required == Decimal("20.00")

    [conversion] = trade_deal_convert(login=login, deal_ticket=9001, lots=Decimal("5.00"))

    bonus = Bonus.objects.get(pk=type_c_bonus.pk)
    assert conversion.amount == Decimal("50.00")
    assert bonus.credit_remaining == Decimal("150.00")
    assert bonus.converted_amount == Decimal("50.00")
    assert bonus.lots_traded == Decimal("5.00")
    assert bonus.progress_pct == Decimal("25.00")
    assert bonus.status == Bonus.Status.ACTIVE
    assert server(login).credit == Decimal("150.00")
    assert server(login).balance == Decimal("450.00")
    writes = CreditIntent.objects.filter(operation=conversion.operation).order_by("pk")
    assert [(w.kind, w.status) for w in writes] == [("credit_out", "done"), ("balance_in", "done")]


def test_replaying_the_same_deal_converts_nothing(type_c_bonus):
    login = type_c_bonus.login
    trade_deal_convert(login=login, deal_ticket=9001, lots=Decimal("5.00"))

    again = trade_deal_convert(login=login, deal_ticket=9001, lots=Decimal("5.00"))

    assert again == []
    assert Conversion.objects.count() == 1
    assert server(login).credit == Decimal("150.00")
    assert server(login).balance == Decimal("450.00")


def test_a_withdrawal_drops_the_unconverted_rest_of_a_type_c_bonus(type_c_bonus):
    login = type_c_bonus.login
    trade_deal_convert(login=login, deal_ticket=9001, lots=Decimal("5.00"))

    [bonus] = withdrawal_apply(login=login, amount=Decimal("45.00"), balance_before=Decimal("450"))

    assert bonus.status == Bonus.Status.CANCELLED
    assert bonus.cancel_reason == "withdrawal"
    assert bonus.credit_remaining == 0
    assert bonus.converted_amount == Decimal("50.00")
    assert server(login).credit == 0


def test_trading_the_required_lots_converts_the_bonus_fully_and_caps_the_amount(type_c_bonus):
    login = type_c_bonus.login
    trade_deal_convert(login=login, deal_ticket=1, lots=Decimal("15.00"))

    trade_deal_convert(login=login, deal_ticket=2, lots=Decimal("8.00"))  # 80.00 asked, 50 left

    bonus = Bonus.objects.get(pk=type_c_bonus.pk)
    assert bonus.status == Bonus.Status.CONVERTED
    assert bonus.converted_amount == Decimal("200.00")
    assert server(login).credit == 0
    assert server(login).balance == Decimal("600.00")


def test_trades_closed_before_the_grant_do_not_convert(type_c_bonus):
    before = type_c_bonus.created_at - timedelta(minutes=1)

    converted = trade_deal_convert(
        login=type_c_bonus.login, deal_ticket=5, lots=Decimal("5"), closed_at=before
    )

    assert converted == []


def test_force_convert_turns_the_rest_into_balance(type_c_bonus, make_user):
    login = type_c_bonus.login
    trade_deal_convert(login=login, deal_ticket=1, lots=Decimal("5.00"))

    bonus = bonus_force_convert(bonus=type_c_bonus, actor=make_user())

    assert bonus.status == Bonus.Status.CONVERTED
    assert bonus.converted_amount == Decimal("200.00")
    assert server(login).credit == 0
    assert server(login).balance == Decimal("600.00")
    with pytest.raises(ConflictError) as raised:
        bonus_force_convert(bonus=bonus)
    assert raised.value.code == "bonus_not_active"


def test_force_convert_refuses_a_bonus_that_is_not_type_c(account, campaign_factory):
    campaign_factory(bonus_type="B")
    [bonus] = trigger_deposit(login=account(balance="100.00"), amount=Decimal("100"))

    with pytest.raises(ConflictError) as raised:
        bonus_force_convert(bonus=bonus)

    assert raised.value.code == "not_type_c"


# --- Cancel --------------------------------------------------------------------------------


def test_cancelling_twice_is_a_conflict_and_removes_credit_once(account, campaign_factory):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B")
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))

    bonus_cancel(bonus=bonus, reason="fraud check")
    with pytest.raises(ConflictError) as raised:
        bonus_cancel(bonus=bonus)

    assert raised.value.code == "bonus_not_active"
    assert server(login).credit == 0
    assert CreditIntent.objects.filter(kind="credit_out").count() == 1
    bonus.refresh_from_db()
    assert bonus.cancel_reason == "fraud check"
    event = AuditEvent.objects.get(object_id=str(bonus.pk), action="bonus.cancelled")
    assert event.before["bonus"]["status"] == "active"
    assert event.after["bonus"]["status"] == "cancelled"
    assert event.after["credit_removed"] == "500.00"


def test_cancelling_never_removes_credit_the_system_did_not_grant(account, campaign_factory):
    login = account(balance="1000.00", credit="70.00")
    campaign_factory(bonus_type="B")
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    assert server(login).credit == Decimal("570.00")

    bonus_cancel(bonus=bonus)

    assert server(login).credit == Decimal("70.00")


# --- Withdrawal ----------------------------------------------------------------------------


def test_withdrawing_10_percent_leaves_90_percent_of_each_a_and_b_bonus(account, campaign_factory):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50", stacking="stackable")
    campaign_factory(bonus_type="B", percentage="33.33", stacking="stackable")
    trigger_deposit(login=login, amount=Decimal("1000.00"))

    changed = withdrawal_apply(
        login=login, amount=Decimal("100.00"), balance_before=Decimal("1000.00"), deal_id=50
    )

    kept = {b.bonus_type: b.credit_remaining for b in changed}
    # 500.00 -> 450.00; 333.30 -> 299.97
    assert kept == {"A": Decimal("450.00"), "B": Decimal("299.97")}
    assert all(b.status == Bonus.Status.ACTIVE for b in changed)
    assert server(login).credit == Decimal("749.97")
    # floor(500 / (450 / 900 + 1))
    assert server(login).leverage == 333


def test_the_cent_of_a_withdrawal_goes_to_the_broker_not_the_client(
    account, campaign_factory, deposit
):
    login = account(balance="20.00")
    campaign_factory(bonus_type="B", percentage="1000")
    deposit(login, "10.00")  # 30.00 on the account
    [bonus] = trigger_deposit(login=login, amount=Decimal("10.00"))  # 100.00 credit

    [bonus] = withdrawal_apply(login=login, amount=Decimal("10.00"), balance_before=Decimal("30"))

    # keeps 100.00 * 2/3 = 66.666..., rounded down: the client never keeps the fraction
    assert bonus.credit_remaining == Decimal("66.66")
    assert server(login).credit == Decimal("66.66")


def test_a_withdrawal_that_leaves_exact_cents_keeps_them_exactly(account, campaign_factory):
    login = account(balance="3.00")
    campaign_factory(bonus_type="B", percentage="100")
    trigger_deposit(login=login, amount=Decimal("3.00"))  # 3.00 credit

    [bonus] = withdrawal_apply(login=login, amount=Decimal("1.00"), balance_before=Decimal("3"))

    assert bonus.credit_remaining == Decimal("2.00")  # 3.00 * 2/3, not 1.99


def test_withdrawing_everything_cancels_every_bonus(account, campaign_factory):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50", stacking="stackable")
    campaign_factory(bonus_type="B", percentage="10", stacking="stackable")
    campaign_factory(bonus_type="C", percentage="10", stacking="stackable")
    trigger_deposit(login=login, amount=Decimal("1000.00"))

    changed = withdrawal_apply(
        login=login, amount=Decimal("1000.00"), balance_before=Decimal("1000.00")
    )

    assert len(changed) == 3
    assert {b.status for b in changed} == {Bonus.Status.CANCELLED}
    assert server(login).credit == 0
    assert server(login).leverage == 500


def test_the_same_withdrawal_deal_twice_cuts_credit_once(account, campaign_factory):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50")
    trigger_deposit(login=login, amount=Decimal("1000.00"))

    for _ in range(2):
        withdrawal_apply(
            login=login, amount=Decimal("100"), balance_before=Decimal("1000"), deal_id=77
        )

    assert server(login).credit == Decimal("450.00")


# --- Drawdown ------------------------------------------------------------------------------


def test_drawdown_closes_positions_cancels_and_removes_only_the_systems_credit(
    account, mt5, campaign_factory
):
    login = account(balance="1000.00", credit="100.00", leverage=500)  # 100.00 not ours
    campaign_factory(bonus_type="A", percentage="50")
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    ticket = mt5.open_position(login, symbol="EURUSD", side="buy", volume="1.00")
    mt5.set_position_profit(ticket, "-1000.00")  # equity 600.00 <= credit 600.00

    [cancelled] = drawdown_apply(login=login)

    assert cancelled.pk == bonus.pk
    assert cancelled.status == Bonus.Status.CANCELLED
    assert cancelled.cancel_reason == "drawdown"
    assert mt5.get_positions([login]) == []
    assert server(login).credit == Decimal("100.00")
    assert server(login).balance == 0
    assert server(login).leverage == 500


def test_no_drawdown_while_equity_is_above_credit(account, mt5, campaign_factory):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50")
    trigger_deposit(login=login, amount=Decimal("1000.00"))
    ticket = mt5.open_position(login, symbol="EURUSD", side="buy", volume="1.00")
    mt5.set_position_profit(ticket, "-999.00")

    assert drawdown_apply(login=login) == []
    assert server(login).credit == Decimal("500.00")
    assert len(mt5.get_positions([login])) == 1


def test_drawdown_leaves_an_account_whose_credit_is_not_the_systems(account, mt5):
    login = account(balance="100.00", credit="500.00")
    ticket = mt5.open_position(login, symbol="EURUSD", side="sell", volume="1.00")
    mt5.set_position_profit(ticket, "-200.00")

    assert drawdown_apply(login=login) == []
    assert server(login).credit == Decimal("500.00")
    assert len(mt5.get_positions([login])) == 1


# --- Expiry --------------------------------------------------------------------------------


def test_an_active_bonus_past_its_expiry_expires_with_its_credit_and_leverage(
    account, campaign_factory
):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50", bonus_expiry_days=7)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
        assert bonus.expires_at == timezone.now() + timedelta(days=7)
        traveller.shift(timedelta(days=6, hours=23))
        assert bonuses_expire_due() == 0
        traveller.shift(timedelta(hours=1))

        assert bonuses_expire_due() == 1

    bonus.refresh_from_db()
    assert bonus.status == Bonus.Status.EXPIRED
    assert bonus.credit_remaining == 0
    assert server(login).credit == 0
    assert server(login).leverage == 500
    assert AuditEvent.objects.filter(object_id=str(bonus.pk), action="bonus.expired").exists()
