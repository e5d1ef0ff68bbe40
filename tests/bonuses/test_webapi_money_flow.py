"""The whole money flow through the Web API client, against the stand-in over loopback HTTP.

The product runs as in production: `MT5_GATEWAY` is the Web API gateway, the monitor sweeps,
its events reach the bonus engine, and every MT5 write leaves the process as a Web API call
(`trade/balance`, `user/update`, `dealer/send_request`). The stand-in serves the simulated
server's database, so the test plays the clients and the market on those rows
(`SimulatedMT5Gateway`: open a position, move its profit) and reads what the server holds:
balance, credit, leverage and the deals with the op ids in their comments. The fixtures
(`webapi`, `market`, `watched`) are in this package's conftest.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AccountEvent
from accounts.services import monitor_discover, monitor_sweep, monitor_test_deal
from bonuses.models import Bonus, CreditIntent
from bonuses.services import bonuses_expire_due, credit_reconcile, intents_resolve
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal
from gateways.mt5 import DealAction, DealEntry, get_mt5_gateway
from gateways.mt5.webapi.gateway import WebApiMT5Gateway
from tests.bonuses.webapi_server import assert_written_once, deals_of, on_server

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_deposit_becomes_a_type_a_bonus_with_its_leverage_through_the_web_api(
    webapi, watched, campaign_factory
):
    assert isinstance(get_mt5_gateway(), WebApiMT5Gateway)
    login = watched(balance="0.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50")

    deal_id = monitor_test_deal(login=login, amount=Decimal("1000.00"))  # trade/balance
    result = monitor_sweep()
    monitor_sweep()

    [bonus] = Bonus.objects.filter(login=login)
    assert (bonus.status, bonus.amount, bonus.deposit_deal_id) == (
        "active",
        Decimal("500.00"),
        deal_id,
    )
    assert result.deposits == 1
    server = on_server(login)
    assert (server.balance, server.credit, server.leverage) == (
        Decimal("1000.00"),
        Decimal("500.00"),
        333,  # floor(500 / (50 / 100 + 1))
    )
    [credit_in] = CreditIntent.objects.filter(bonus=bonus, kind="credit_in")
    [deal] = deals_of(credit_in)
    assert (deal.action, deal.profit) == (DealAction.CREDIT, Decimal("500.00"))
    assert SimulatedMT5Deal.objects.filter(account_id=login, action="credit").count() == 1
    assert AccountEvent.objects.get(ticket=deal_id).status == AccountEvent.Status.DONE
    assert_written_once(login)
    assert credit_reconcile() == []


def test_a_partial_withdrawal_takes_the_credit_back_in_proportion_through_the_web_api(
    webapi, watched, campaign_factory
):
    login = watched(balance="0.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50")
    monitor_test_deal(login=login, amount=Decimal("1000.00"))
    monitor_sweep()

    monitor_test_deal(login=login, amount=Decimal("-250.00"))
    result = monitor_sweep()
    monitor_sweep()

    bonus = Bonus.objects.get(login=login)
    assert result.withdrawals == 1
    assert (bonus.status, bonus.credit_remaining) == ("active", Decimal("375.00"))
    server = on_server(login)
    assert (server.balance, server.credit, server.leverage) == (
        Decimal("750.00"),
        Decimal("375.00"),  # 500 * (1000 - 250) / 1000
        333,  # floor(500 / (1 + 375 / 750))
    )
    [credit_out] = CreditIntent.objects.filter(login=login, kind="credit_out")
    [deal] = deals_of(credit_out)
    assert (deal.action, deal.profit) == (DealAction.CREDIT, Decimal("-125.00"))
    assert_written_once(login)
    assert credit_reconcile() == []


def test_drawdown_closes_the_positions_by_dealer_requests_and_takes_the_credit_back(
    webapi, watched, market, campaign_factory
):
    login = watched(balance="0.00", leverage=500)
    campaign_factory(bonus_type="B", percentage="100")
    monitor_test_deal(login=login, amount=Decimal("500.00"))
    monitor_sweep()
    assert on_server(login).credit == Decimal("500.00")
    first = market.open_position(login, symbol="EURUSD", side="buy", volume="1.00")
    second = market.open_position(login, symbol="GBPUSD", side="sell", volume="0.50")
    market.set_position_profit(first, "-300.00")
    market.set_position_profit(second, "-199.00")
    assert monitor_sweep().drawdowns == 0  # equity 501.00 > credit 500.00

    market.set_position_profit(second, "-200.00")
    result = monitor_sweep()
    monitor_sweep()

    assert result.drawdowns == 1
    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.cancel_reason) == ("cancelled", "drawdown")
    [close] = CreditIntent.objects.filter(login=login, kind="close_positions")
    closing = deals_of(close).filter(entry=DealEntry.OUT).order_by("position_id")
    assert list(closing.values_list("position_id", "action", "profit")) == [
        (first, DealAction.SELL, Decimal("-300.00")),
        (second, DealAction.BUY, Decimal("-200.00")),
    ]
    assert get_mt5_gateway().client.stats.by_path["/api/dealer/send_request"] == 2
    server = on_server(login)
    assert (server.credit, server.balance) == (Decimal("0.00"), Decimal("0.00"))
    assert not market.get_positions([login])
    assert AccountEvent.objects.filter(kind="drawdown").count() == 1
    assert_written_once(login)
    assert credit_reconcile() == []


def test_type_c_credit_converts_to_balance_as_lots_are_traded_through_the_web_api(
    webapi, watched, market, campaign_factory
):
    login = watched(balance="1000.00")
    campaign_factory(bonus_type="C", percentage="10", convert_per_lot="10.00")
    monitor_test_deal(login=login, amount=Decimal("500.00"))
    monitor_sweep()
    assert on_server(login).credit == Decimal("50.00")
    position = market.open_position(login, symbol="EURUSD", side="buy", volume="2.00")
    market.close_position(position, profit="0.00")  # 2 lots convert 20.00

    monitor_sweep()  # the trade converts: credit out 20.00, balance in 20.00
    monitor_sweep()  # the conversion's own balance deal, seen by the monitor

    bonus = Bonus.objects.get(login=login)
    assert (bonus.credit_remaining, bonus.converted_amount) == (Decimal("30.00"), Decimal("20.00"))
    server = on_server(login)
    assert (server.balance, server.credit) == (Decimal("1520.00"), Decimal("30.00"))
    conversion = CreditIntent.objects.filter(login=login, kind__in=["credit_out", "balance_in"])
    assert sorted(conversion.values_list("kind", "amount")) == [
        ("balance_in", Decimal("20.00")),
        ("credit_out", Decimal("20.00")),
    ]
    [balance_in] = conversion.filter(kind="balance_in")
    assert deals_of(balance_in).get().action == DealAction.BALANCE
    assert not AccountEvent.objects.filter(kind="deposit", amount=Decimal("20.00")).exists()
    assert Bonus.objects.filter(login=login).count() == 1
    assert_written_once(login)
    assert credit_reconcile() == []


def test_an_expired_bonus_leaves_with_its_credit_and_the_leverage_comes_back(
    webapi, watched, campaign_factory, time_machine
):
    login = watched(balance="0.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50", bonus_expiry_days=7)
    monitor_test_deal(login=login, amount=Decimal("1000.00"))
    monitor_sweep()
    assert (on_server(login).credit, on_server(login).leverage) == (Decimal("500.00"), 333)

    time_machine.move_to(timezone.now() + timedelta(days=6, hours=23))
    assert bonuses_expire_due() == 0
    time_machine.move_to(timezone.now() + timedelta(hours=1))
    assert bonuses_expire_due() == 1
    monitor_sweep()  # the expiry's credit-out deal is the system's own: no event

    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.credit_remaining) == ("expired", Decimal("0.00"))
    server = on_server(login)
    assert (server.balance, server.credit, server.leverage) == (Decimal("1000.00"), 0, 500)
    assert not AccountEvent.objects.exclude(status="done").exists()
    assert_written_once(login)
    assert credit_reconcile() == []


def test_reconcile_reads_the_server_credit_through_the_web_api_and_names_a_dealers_hand(
    webapi, watched, market, campaign_factory
):
    granted, untouched = watched(), watched()
    campaign_factory(bonus_type="A", percentage="50")
    monitor_test_deal(login=granted, amount=Decimal("200.00"))
    monitor_sweep()
    assert credit_reconcile() == []

    market.post_credit(granted, Decimal("15.00"), comment="dealer")  # by hand, in the terminal

    [drift] = credit_reconcile(logins=[granted, untouched])
    assert (drift.login, drift.ledger_credit, drift.server_credit, drift.drift) == (
        granted,
        Decimal("100.00"),
        Decimal("115.00"),
        Decimal("15.00"),
    )
    assert intents_resolve()["operations"] == 0  # nothing left open to settle


def test_a_deposit_in_the_second_the_monitor_began_watching_is_not_history(
    webapi, market, campaign_factory, time_machine
):
    # MT5's `Time` is whole seconds: read alone, a deposit half a second after discovery
    # would look older than `watch_from` and be skipped as history. `TimeMsc` keeps it.
    second = timezone.now().replace(microsecond=0) + timedelta(seconds=5)
    login = market.add_account(balance=Decimal("100.00"))  # its opening deposit: history
    SimulatedMT5Account.objects.filter(pk=login).update(registered_at=second - timedelta(days=30))
    campaign_factory(bonus_type="A", percentage="50")
    time_machine.move_to(second + timedelta(milliseconds=400), tick=False)
    monitor_discover()
    time_machine.move_to(second + timedelta(milliseconds=600), tick=False)

    deal_id = monitor_test_deal(login=login, amount=Decimal("200.00"))
    monitor_sweep()

    assert Bonus.objects.get(login=login).deposit_deal_id == deal_id
    assert on_server(login).credit == Decimal("100.00")
