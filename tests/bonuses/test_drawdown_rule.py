"""Drawdown protection across sweeps: it is for a client who lost their own funds.

What was seen: a new account with balance 0 got its 25.00 registration bonus on one sweep and
lost it to drawdown protection on the next (equity = credit, so "equity <= credit" fired).
Each test here runs the monitor several sweeps, as production does, and looks at what the
client would see: the bonus, the credit on MT5, their positions.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AccountEvent, AuditEvent, MonitoredAccount
from accounts.roles import Role
from accounts.services import monitor_discover, monitor_sweep, monitor_test_deal
from bonuses.models import Bonus
from bonuses.services import (
    bonus_assign,
    drawdown_apply,
    trigger_deposit,
    trigger_promo_code,
    trigger_registration,
)
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal
from gateways.mt5 import DealAction, get_mt5_gateway

BONUS_TYPES = ["A", "B", "C"]
SWEEPS = 4


def server(login):
    return get_mt5_gateway().get_accounts([login])[login]


def sweeps(count=SWEEPS):
    return [monitor_sweep() for _ in range(count)]


@pytest.fixture
def watch(mt5):
    """`watch(login)`: an account opened a month ago, watched from now on."""

    def register(login):
        month_ago = timezone.now() - timedelta(days=30)
        SimulatedMT5Account.objects.filter(pk=login).update(registered_at=month_ago)
        monitor_discover()
        return MonitoredAccount.objects.get(login=login)

    return register


@pytest.fixture
def super_admin(make_user):
    return make_user(Role.SUPER_ADMIN)


def charge(login, amount):
    """The broker takes `amount` from the balance (a fee, a correction): no trade, no deposit."""
    SimulatedMT5Deal.objects.create(account_id=login, action=DealAction.CHARGE, profit=-amount)
    account = SimulatedMT5Account.objects.get(pk=login)
    account.balance -= amount
    account.save(update_fields=["balance"])


# --- No own funds, no trading: the bonus stays ---------------------------------------------------


def _registration_by_monitor(mt5, **_):
    login = mt5.add_account(balance="0.00", leverage=500)
    monitor_discover()
    return login


def _registration_by_api(mt5, watch, **_):
    login = mt5.add_account(balance="0.00", leverage=500)
    watch(login)
    monitor_sweep()
    trigger_registration(login=login)
    return login


def _assigned_by_staff(mt5, watch, campaign, super_admin, **_):
    login = mt5.add_account(balance="0.00", leverage=500)
    watch(login)
    monitor_sweep()
    bonus_assign(login=login, campaign=campaign, actor=super_admin, reason="welcome gift")
    return login


NO_DEPOSIT_GRANTS = {
    "registration seen by the monitor": _registration_by_monitor,
    "registration trigger": _registration_by_api,
    "manual assign": _assigned_by_staff,
}


@pytest.mark.parametrize("bonus_type", BONUS_TYPES)
@pytest.mark.parametrize("grant", NO_DEPOSIT_GRANTS, ids=list(NO_DEPOSIT_GRANTS))
def test_a_no_deposit_bonus_on_an_empty_account_survives_every_sweep(
    mt5, watch, campaign_factory, super_admin, bonus_type, grant
):
    campaign = campaign_factory(
        bonus_type=bonus_type, trigger_type="registration", fixed_amount="25.00"
    )
    login = NO_DEPOSIT_GRANTS[grant](mt5, watch=watch, campaign=campaign, super_admin=super_admin)

    results = sweeps()

    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.credit_remaining, bonus.cancel_reason) == (
        "active",
        Decimal("25.00"),
        "",
    )
    assert server(login).credit == Decimal("25.00")
    assert server(login).equity == Decimal("25.00")  # equity = credit: the line, not a loss
    # The monitor saw equity at the credit once; the engine looked and left the bonus alone.
    assert sum(result.drawdowns for result in results) <= 1
    assert not AccountEvent.objects.filter(login=login).exclude(status="done").exists()


def test_an_account_emptied_long_ago_has_no_own_funds_when_its_no_deposit_bonus_arrives(
    account, watch, campaign_factory, super_admin
):
    login = account(balance="300.00")
    watch(login)
    monitor_test_deal(login=login, amount=Decimal("-300.00"))  # withdrew everything
    monitor_sweep()
    campaign = campaign_factory(bonus_type="B", trigger_type="registration", fixed_amount="25.00")
    bonus_assign(login=login, campaign=campaign, actor=super_admin, reason="win-back gift")

    sweeps()

    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, server(login).credit) == ("active", Decimal("25.00"))


def test_a_skipped_drawdown_says_why_in_the_bonus_trail(mt5, campaign_factory):
    campaign_factory(bonus_type="B", trigger_type="registration", fixed_amount="25.00")
    login = _registration_by_monitor(mt5)

    sweeps()

    bonus = Bonus.objects.get(login=login)
    [event] = AuditEvent.objects.filter(object_id=str(bonus.pk), action="bonus.drawdown_skipped")
    assert "no own funds" in event.reason
    assert "no trading" in event.reason


# --- Own funds or trading: protection fires as before ----------------------------------------


def _auto_deposit(login, campaign, **_):
    monitor_test_deal(login=login, amount=Decimal("500.00"))


def _agent_code(login, campaign, mt5, **_):
    mt5.set_lead_source(login, "IB-7")
    monitor_test_deal(login=login, amount=Decimal("500.00"))


def _promo_code(login, campaign, deposit, **_):
    deal = deposit(login, "500.00")
    monitor_sweep()  # the deposit, seen before the client types the code
    trigger_promo_code(login=login, code=campaign.promo_code, deal_id=deal)


def _manual_with_deal(login, campaign, deposit, super_admin, **_):
    deal = deposit(login, "500.00")
    monitor_sweep()
    bonus_assign(login=login, campaign=campaign, actor=super_admin, deal_id=deal)


DEPOSIT_GRANTS = {
    "auto_deposit": ("auto_deposit", _auto_deposit),
    "agent_code": ("agent_code", _agent_code),
    "promo_code": ("promo_code", _promo_code),
    # A campaign the monitor does not fire by itself, so the grant is staff's.
    "manual": ("promo_code", _manual_with_deal),
}


@pytest.mark.parametrize("bonus_type", BONUS_TYPES)
@pytest.mark.parametrize("grant", DEPOSIT_GRANTS, ids=list(DEPOSIT_GRANTS))
def test_a_client_who_trades_away_their_deposit_loses_the_bonus_to_drawdown(
    mt5, account, watch, deposit, campaign_factory, super_admin, bonus_type, grant
):
    trigger_type, make_grant = DEPOSIT_GRANTS[grant]
    fields = {"promo_code": "WELCOME10"} if trigger_type == "promo_code" else {}
    if trigger_type == "agent_code":
        fields["agent_codes"] = ["IB-7"]
    campaign = campaign_factory(
        bonus_type=bonus_type,
        percentage="10",
        trigger_type=trigger_type,
        one_per_account=False,
        **fields,
    )
    login = account(balance="0.00", leverage=500)
    watch(login)
    make_grant(login, campaign, mt5=mt5, deposit=deposit, super_admin=super_admin)
    sweeps(2)
    assert Bonus.objects.get(login=login).status == "active"
    assert server(login).credit == Decimal("50.00")

    position = mt5.open_position(login, symbol="EURUSD", side="buy", volume="0.10")
    mt5.set_position_profit(position, "-499.00")
    sweeps(2)
    assert Bonus.objects.get(login=login).status == "active"  # 1.00 of their own left
    mt5.set_position_profit(position, "-500.00")
    sweeps()

    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.cancel_reason) == ("cancelled", "drawdown")
    assert server(login).credit == 0
    assert mt5.get_positions([login]) == []


def test_a_deposit_taken_by_a_broker_charge_still_counts_as_own_funds_lost(
    account, watch, campaign_factory
):
    campaign_factory(bonus_type="B", percentage="10")
    login = account(balance="0.00")
    watch(login)
    monitor_test_deal(login=login, amount=Decimal("500.00"))
    sweeps(2)

    charge(login, Decimal("500.00"))  # balance 0, equity 50.00 = credit 50.00, no trade
    sweeps()

    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.cancel_reason) == ("cancelled", "drawdown")
    assert server(login).credit == 0


def test_a_registration_bonus_then_a_deposit_lost_in_trading_fires(mt5, campaign_factory):
    campaign_factory(bonus_type="B", trigger_type="registration", fixed_amount="25.00")
    login = _registration_by_monitor(mt5)
    sweeps(2)
    monitor_test_deal(login=login, amount=Decimal("100.00"))
    sweeps(2)
    assert Bonus.objects.get(login=login).status == "active"

    position = mt5.open_position(login, symbol="EURUSD", side="sell", volume="0.10")
    mt5.close_position(position, profit="-100.00")
    sweeps()

    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.cancel_reason) == ("cancelled", "drawdown")
    assert server(login).credit == 0


def test_a_registration_bonus_on_an_account_that_already_held_a_deposit_is_protected(
    mt5, campaign_factory
):
    campaign_factory(bonus_type="B", trigger_type="registration", fixed_amount="25.00")
    login = mt5.add_account(balance="100.00")  # deposited before the monitor saw it
    monitor_discover()
    sweeps(2)
    assert server(login).equity == Decimal("125.00")

    charge(login, Decimal("100.00"))
    sweeps()

    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.cancel_reason) == ("cancelled", "drawdown")


@pytest.mark.parametrize("bonus_type", BONUS_TYPES)
def test_a_no_deposit_bonus_traded_at_a_loss_is_protected_once_trading_started(
    mt5, campaign_factory, bonus_type
):
    campaign_factory(bonus_type=bonus_type, trigger_type="registration", fixed_amount="25.00")
    login = _registration_by_monitor(mt5)
    sweeps()
    assert Bonus.objects.get(login=login).status == "active"

    position = mt5.open_position(login, symbol="EURUSD", side="buy", volume="0.01")
    mt5.set_position_profit(position, "3.00")  # equity 28.00 above the credit
    sweeps(2)
    assert Bonus.objects.get(login=login).status == "active"
    mt5.set_position_profit(position, "-3.00")  # equity 22.00 under the credit: trading on it
    sweeps()

    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.cancel_reason) == ("cancelled", "drawdown")
    assert mt5.get_positions([login]) == []
    assert server(login).credit == 0


def test_drawdown_apply_on_an_untouched_no_deposit_account_changes_nothing(mt5, campaign_factory):
    campaign_factory(bonus_type="A", trigger_type="registration", fixed_amount="25.00")
    login = mt5.add_account(balance="0.00", leverage=500)
    [bonus] = trigger_registration(login=login)

    for _ in range(3):
        assert drawdown_apply(login=login) == []

    bonus.refresh_from_db()
    assert bonus.status == "active"
    assert server(login).credit == Decimal("25.00")


def test_drawdown_apply_for_a_deposit_bonus_without_the_monitor(account, mt5, campaign_factory):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="50")
    trigger_deposit(login=login, amount=Decimal("1000.00"))
    charge(login, Decimal("1000.00"))

    [cancelled] = drawdown_apply(login=login)

    assert cancelled.cancel_reason == "drawdown"
    assert server(login).credit == 0
