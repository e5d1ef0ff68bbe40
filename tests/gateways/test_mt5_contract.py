"""One contract for the MT5 manager gateway, run against the simulated server and the Web API
client talking to the Web API stand-in over loopback HTTP.

Each implementation comes with a small `server` object that plays the clients and the market
(`add_account`, `open_position`, `close_position`, `password_matches`); the assertions only use
the gateway and that object, so they are shared.
"""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.hashers import check_password
from django.db import connection

from gateways.errors import PermanentGatewayError, TransientGatewayError
from gateways.loading import reset_gateways
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal, SimulatorKnobs
from gateways.mt5 import (
    AccountState,
    DealAction,
    DealEntry,
    MT5ManagerGateway,
    PositionSide,
    get_mt5_gateway,
)
from gateways.mt5.simulated import SimulatedMT5Gateway, seed_demo_accounts
from gateways.mt5.types import COMMENT_MAX_LENGTH
from gateways.mt5.webapi.gateway import WebApiMT5Gateway
from tests.gateways.mt5_webapi_standin import MANAGER_LOGIN, MANAGER_PASSWORD, running_standin


class SimulatedServer:
    """The simulated server: the gateway's own helpers play the clients and the market."""

    def __init__(self) -> None:
        self.gateway = SimulatedMT5Gateway()
        self.add_account = self.gateway.add_account
        self.open_position = self.gateway.open_position
        self.close_position = self.gateway.close_position
        self.password_matches = self.gateway.password_matches


class WebApiServer(SimulatedServer):
    """The Web API client talking to the stand-in over loopback HTTP; the stand-in serves the
    simulated server's database, so the simulated helpers play the clients and the market."""

    def __init__(self, gateway) -> None:
        super().__init__()
        self.gateway = gateway


@pytest.fixture(params=["simulated", "webapi"])
def server(request):
    if request.param == "simulated":
        request.getfixturevalue("db")
        yield SimulatedServer()
        return
    # The stand-in answers on its own threads and database connections: they must see what
    # the test writes, so the test's writes are committed.
    request.applymarker(pytest.mark.django_db(transaction=True))
    request.getfixturevalue("transactional_db")
    with running_standin(groups=("demo\\standard",)) as (url, _standin):
        gateway = WebApiMT5Gateway(url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD)
        yield WebApiServer(gateway)
        gateway.client.close()


def _deals(server, login, after=0):
    return server.gateway.get_deals(cursors={login: after})


def _account(server, login):
    return server.gateway.get_accounts([login])[login]


def test_the_gateway_satisfies_the_protocol_and_answers_a_ping(server):
    assert isinstance(server.gateway, MT5ManagerGateway)
    server.gateway.ping()


def test_accounts_come_back_in_one_batch_without_the_unknown_logins(server):
    first = server.add_account(
        name="Ann", group="real\\pro", country="Japan", leverage=200, balance="1000.50"
    )
    second = server.add_account(credit=250, lead_source="IB-ALPHA")

    accounts = server.gateway.get_accounts([first, second, 999_999])

    assert set(accounts) == {first, second}
    ann = accounts[first]
    assert (ann.login, ann.name, ann.group, ann.country) == (first, "Ann", "real\\pro", "Japan")
    assert (ann.balance, ann.credit, ann.equity) == (Decimal("1000.50"), 0, Decimal("1000.50"))
    assert (ann.leverage, ann.currency, ann.enabled) == (200, "USD", True)
    assert ann.registered_at.utcoffset().total_seconds() == 0
    assert accounts[second].credit == Decimal("250.00")
    assert accounts[second].lead_source == "IB-ALPHA"


def test_states_come_back_in_one_batch_as_the_accounts_numbers(server):
    quiet = server.add_account(balance="1000.50", leverage=200)
    trading = server.add_account(balance=1000, credit=200, leverage=500)
    server.open_position(trading, symbol="EURUSD", side="buy", volume="1", profit="-150.25")

    states = server.gateway.get_states([quiet, trading, 999_999])

    assert set(states) == {quiet, trading}
    assert states[quiet] == (Decimal("1000.50"), 0, Decimal("1000.50"), 200)
    assert states[trading] == AccountState(
        balance=Decimal("1000.00"),
        credit=Decimal("200.00"),
        equity=Decimal("1049.75"),
        leverage=500,
    )
    assert states[trading] == tuple(
        getattr(_account(server, trading), name) for name in AccountState._fields
    )
    assert str(states[trading].equity) == "1049.75"


def test_equity_is_balance_plus_credit_plus_the_open_positions_profit(server):
    login = server.add_account(balance=1000, credit=200)
    server.open_position(login, symbol="EURUSD", side="buy", volume="1", profit="-150.25")

    assert _account(server, login).equity == Decimal("1049.75")


def test_every_login_group_and_country_is_listed_sorted_and_once(server):
    a = server.add_account(group="real\\vip", country="Japan")
    b = server.add_account(group="demo\\standard", country="Brazil")
    c = server.add_account(group="real\\vip", country="Japan")

    assert server.gateway.list_logins() == sorted([a, b, c])
    assert server.gateway.list_groups() == ["demo\\standard", "real\\vip"]
    assert server.gateway.list_countries() == ["Brazil", "Japan"]


def test_a_deposit_and_a_withdrawal_are_balance_deals_carrying_their_comment(server):
    login = server.add_account()

    deposit = server.gateway.post_balance(login, Decimal("500"), comment="op-1")
    withdrawal = server.gateway.post_balance(login, Decimal("-200.10"), comment="op-2")

    deals = _deals(server, login)
    assert [d.ticket for d in deals] == [deposit, withdrawal]
    assert all(d.action == DealAction.BALANCE and d.entry == DealEntry.NONE for d in deals)
    assert [(d.profit, d.comment, d.login) for d in deals] == [
        (Decimal("500.00"), "op-1", login),
        (Decimal("-200.10"), "op-2", login),
    ]
    assert deals[0].volume == 0
    assert _account(server, login).balance == Decimal("299.90")


def test_a_withdrawal_beyond_the_balance_is_refused_and_books_nothing(server):
    login = server.add_account(balance=100)
    before = _deals(server, login)

    with pytest.raises(PermanentGatewayError) as caught:
        server.gateway.post_balance(login, Decimal("-100.01"), comment="op-1")

    assert caught.value.code == "insufficient_balance"
    assert _account(server, login).balance == Decimal("100.00")
    assert _deals(server, login) == before


def test_credit_goes_in_and_out_as_credit_deals(server):
    login = server.add_account(balance=1000)

    granted = server.gateway.post_credit(login, Decimal("300"), comment="grant-1")
    removed = server.gateway.post_credit(login, Decimal("-300"), comment="remove-1")

    deals = _deals(server, login)[-2:]
    assert [(d.ticket, d.action, d.profit, d.comment) for d in deals] == [
        (granted, DealAction.CREDIT, Decimal("300.00"), "grant-1"),
        (removed, DealAction.CREDIT, Decimal("-300.00"), "remove-1"),
    ]
    account = _account(server, login)
    assert (account.credit, account.balance) == (0, Decimal("1000.00"))


def test_credit_cannot_go_below_zero(server):
    login = server.add_account(balance=1000, credit=50)

    with pytest.raises(PermanentGatewayError) as caught:
        server.gateway.post_credit(login, Decimal("-50.01"), comment="remove-1")

    assert caught.value.code == "insufficient_credit"
    assert _account(server, login).credit == Decimal("50.00")


def test_a_zero_amount_is_refused(server):
    login = server.add_account()

    with pytest.raises(PermanentGatewayError) as caught:
        server.gateway.post_balance(login, Decimal("0.001"), comment="op-1")

    assert caught.value.code == "invalid_amount"


def test_a_comment_longer_than_mt5_keeps_is_refused(server):
    login = server.add_account(credit=10)

    with pytest.raises(PermanentGatewayError) as caught:
        server.gateway.post_credit(login, Decimal("-1"), comment="x" * (COMMENT_MAX_LENGTH + 1))

    assert caught.value.code == "invalid_comment"
    assert _account(server, login).credit == Decimal("10.00")


@pytest.mark.parametrize(
    "write",
    [
        lambda gw, login: gw.post_balance(login, Decimal("10"), comment="op"),
        lambda gw, login: gw.post_credit(login, Decimal("10"), comment="op"),
        lambda gw, login: gw.close_positions(login, comment="op"),
        lambda gw, login: gw.set_leverage(login, 100),
        lambda gw, login: gw.change_password(login, "Secret123"),
        lambda gw, login: gw.set_enabled(login, False),
    ],
    ids=["balance", "credit", "close", "leverage", "password", "enabled"],
)
def test_a_write_on_an_unknown_login_is_account_not_found(server, write):
    with pytest.raises(PermanentGatewayError) as caught:
        write(server.gateway, 999_999)

    assert caught.value.code == "account_not_found"


def test_deals_come_back_after_each_logins_own_cursor_in_one_call(server):
    a = server.add_account(balance=100)
    b = server.add_account(balance=200)
    other = server.add_account(balance=300)
    a_seen = server.gateway.post_balance(a, Decimal("1"), comment="a-1")
    b_later = server.gateway.post_balance(b, Decimal("2"), comment="b-1")
    a_later = server.gateway.post_balance(a, Decimal("3"), comment="a-2")
    b_deposit = _deals(server, b)[0].ticket

    deals = server.gateway.get_deals(cursors={a: a_seen, b: 0})

    assert [d.ticket for d in deals] == [b_deposit, b_later, a_later]
    assert other not in {d.login for d in deals}
    assert server.gateway.get_deals(cursors={a: a_later}) == []
    assert server.gateway.get_deals(cursors={}) == []


def test_deals_before_since_are_left_out(server, time_machine):
    login = server.add_account()
    time_machine.move_to(datetime(2030, 1, 1, tzinfo=UTC), tick=False)
    server.gateway.post_balance(login, Decimal("10"), comment="old")
    time_machine.move_to(datetime(2030, 1, 2, tzinfo=UTC), tick=False)
    server.gateway.post_balance(login, Decimal("20"), comment="new")

    deals = server.gateway.get_deals(cursors={login: 0}, since=datetime(2030, 1, 2, tzinfo=UTC))

    assert [(d.comment, d.time) for d in deals] == [("new", datetime(2030, 1, 2, tzinfo=UTC))]


def test_deal_tickets_only_grow(server):
    a = server.add_account()
    b = server.add_account()
    tickets = [
        server.gateway.post_balance(login, Decimal("5"), comment="op") for login in (a, b, a, b, a)
    ]

    assert tickets == sorted(set(tickets))


def test_opening_and_closing_a_position_books_in_and_out_trade_deals(server):
    login = server.add_account(balance=1000)
    position = server.open_position(login, symbol="EURUSD", side="buy", volume="0.5")

    closing = server.close_position(position, profit="120.40")

    trades = [d for d in _deals(server, login) if d.action != DealAction.BALANCE]
    assert [(d.action, d.entry, d.symbol, d.volume, d.position_id) for d in trades] == [
        (DealAction.BUY, DealEntry.IN, "EURUSD", Decimal("0.50"), position),
        (DealAction.SELL, DealEntry.OUT, "EURUSD", Decimal("0.50"), position),
    ]
    assert trades[1].ticket == closing
    assert trades[1].profit == Decimal("120.40")
    assert _account(server, login).balance == Decimal("1120.40")
    assert server.gateway.get_positions([login]) == []


def test_positions_of_several_logins_come_back_in_one_call(server):
    a = server.add_account(balance=1000)
    b = server.add_account(balance=1000)
    server.open_position(a, symbol="EURUSD", side="buy", volume="1", profit="10")
    server.open_position(b, symbol="XAUUSD", side="sell", volume="0.1", profit="-5")

    positions = server.gateway.get_positions([a, b, 999_999])

    assert [(p.login, p.symbol, p.side, p.volume, p.profit) for p in positions] == [
        (a, "EURUSD", PositionSide.BUY, Decimal("1.00"), Decimal("10.00")),
        (b, "XAUUSD", PositionSide.SELL, Decimal("0.10"), Decimal("-5.00")),
    ]


def test_close_positions_closes_them_all_and_returns_the_closing_tickets(server):
    login = server.add_account(balance=1000)
    other = server.add_account(balance=1000)
    server.open_position(login, symbol="EURUSD", side="buy", volume="1", profit="50")
    server.open_position(login, symbol="GBPUSD", side="sell", volume="2", profit="-20")
    server.open_position(other, symbol="EURUSD", side="buy", volume="1", profit="5")

    tickets = server.gateway.close_positions(login, comment="drawdown-7")

    closing = [d for d in _deals(server, login) if d.entry == DealEntry.OUT]
    assert tickets == [d.ticket for d in closing]
    assert [(d.action, d.profit, d.comment) for d in closing] == [
        (DealAction.SELL, Decimal("50.00"), "drawdown-7"),
        (DealAction.BUY, Decimal("-20.00"), "drawdown-7"),
    ]
    assert server.gateway.get_positions([login]) == []
    assert len(server.gateway.get_positions([other])) == 1
    assert _account(server, login).balance == Decimal("1030.00")
    assert server.gateway.close_positions(login, comment="drawdown-8") == []


def test_set_leverage_changes_the_leverage(server):
    login = server.add_account(leverage=500)

    server.gateway.set_leverage(login, 333)

    assert _account(server, login).leverage == 333


def test_create_account_picks_a_new_login_with_an_empty_balance(server):
    existing = server.add_account()

    account = server.gateway.create_account(
        name="New Client",
        group="demo\\standard",
        country="Germany",
        leverage=200,
        password="Start#1234",
        lead_source="IB-BETA",
    )

    assert account.login not in (existing, 0)
    assert (account.name, account.group, account.country) == (
        "New Client",
        "demo\\standard",
        "Germany",
    )
    assert (account.balance, account.credit, account.equity) == (0, 0, 0)
    assert (account.leverage, account.lead_source, account.currency) == (200, "IB-BETA", "USD")
    assert account.enabled is True
    assert _account(server, account.login) == account
    assert account.login in server.gateway.list_logins()
    assert server.password_matches(account.login, "Start#1234")


def test_a_password_shorter_than_eight_characters_is_refused(server):
    with pytest.raises(PermanentGatewayError) as caught:
        server.gateway.create_account(
            name="X", group="demo\\standard", country="Germany", leverage=100, password="short"
        )

    assert caught.value.code == "invalid_password"


def test_change_password_replaces_the_password(server):
    account = server.gateway.create_account(
        name="X", group="demo\\standard", country="Germany", leverage=100, password="First#1234"
    )

    server.gateway.change_password(account.login, "Second1234")

    assert server.password_matches(account.login, "Second1234")
    assert not server.password_matches(account.login, "First#1234")


def test_set_enabled_disables_and_enables_the_account(server):
    login = server.add_account()

    server.gateway.set_enabled(login, False)
    assert _account(server, login).enabled is False

    server.gateway.set_enabled(login, True)
    assert _account(server, login).enabled is True


def test_find_deal_by_comment_finds_the_deal_and_misses_an_unknown_comment(server):
    login = server.add_account(balance=100)
    other = server.add_account(balance=100)
    ticket = server.gateway.post_credit(login, Decimal("25"), comment="op-42")
    server.gateway.post_credit(other, Decimal("25"), comment="op-43")

    found = server.gateway.find_deal_by_comment(login, "op-42")

    assert (found.ticket, found.action, found.profit) == (ticket, "credit", Decimal("25.00"))
    assert server.gateway.find_deal_by_comment(login, "op-43") is None
    assert server.gateway.find_deal_by_comment(login, "op-4") is None
    assert server.gateway.find_deal_by_comment(999_999, "op-42") is None


# --- The simulated server's own behaviour ------------------------------------------------


@pytest.mark.django_db
def test_the_error_rate_knob_at_one_makes_every_call_fail_transiently():
    SimulatorKnobs.objects.create(server="mt5", error_rate=1)
    gateway = SimulatedMT5Gateway()

    with pytest.raises(TransientGatewayError):
        gateway.ping()
    with pytest.raises(TransientGatewayError):
        gateway.get_accounts([10001])


@pytest.mark.django_db
def test_the_market_moves_equity_and_a_close_books_the_floating_profit():
    gateway = SimulatedMT5Gateway()
    login = gateway.add_account(balance=1000, credit=100)
    ticket = gateway.open_position(login, symbol="EURUSD", side="sell", volume="1")

    gateway.set_position_profit(ticket, "-250.50")
    assert gateway.get_accounts([login])[login].equity == Decimal("849.50")

    closing = gateway.close_position(ticket)
    account = gateway.get_accounts([login])[login]
    assert (account.balance, account.equity) == (Decimal("749.50"), Decimal("849.50"))
    assert gateway.find_deal_by_comment(login, "").ticket == closing
    with pytest.raises(PermanentGatewayError) as caught:
        gateway.close_position(ticket)
    assert caught.value.code == "position_not_found"


@pytest.mark.django_db
def test_the_lead_source_can_be_set_for_agent_code_campaigns():
    gateway = SimulatedMT5Gateway()
    login = gateway.add_account()

    gateway.set_lead_source(login, "IB-ALPHA")

    assert gateway.get_accounts([login])[login].lead_source == "IB-ALPHA"


@pytest.mark.django_db
def test_a_failed_call_moves_no_money():
    gateway = SimulatedMT5Gateway()
    login = gateway.add_account(balance=100)
    SimulatorKnobs.objects.create(server="mt5", error_rate=1)

    with pytest.raises(TransientGatewayError):
        gateway.post_balance(login, Decimal("50"), comment="op-1")

    assert SimulatedMT5Account.objects.get(pk=login).balance == Decimal("100.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_credit_removals_never_take_the_credit_below_zero():
    gateway = SimulatedMT5Gateway()
    login = gateway.add_account(balance=1000, credit=100)
    start = threading.Barrier(8)
    outcomes = []

    def remove():
        start.wait()
        try:
            gateway.post_credit(login, Decimal("-30"), comment="remove")
            outcomes.append("done")
        except PermanentGatewayError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=remove) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["done"] * 3 + ["insufficient_credit"] * 5
    assert SimulatedMT5Account.objects.get(pk=login).credit == Decimal("10.00")
    assert SimulatedMT5Deal.objects.filter(account_id=login, comment="remove").count() == 3


@pytest.mark.django_db
def test_seeding_the_demo_accounts_twice_creates_them_once():
    assert seed_demo_accounts() == 10
    assert seed_demo_accounts() == 0

    gateway = SimulatedMT5Gateway()
    accounts = gateway.get_accounts(range(10001, 10011))
    assert sorted(accounts) == list(range(10001, 10011))
    assert {a.leverage for a in accounts.values()} >= {100, 200, 500}
    assert any(a.credit for a in accounts.values())
    assert any(a.equity != a.balance + a.credit for a in accounts.values())
    assert any(a.lead_source for a in accounts.values())
    deposits = SimulatedMT5Deal.objects.filter(action=DealAction.BALANCE)
    assert deposits.count() == 10
    assert {d.account_id: d.profit for d in deposits} == {
        a.login: a.balance for a in accounts.values()
    }


@pytest.mark.django_db
def test_passwords_are_stored_hashed():
    account = SimulatedMT5Gateway().create_account(
        name="X", group="demo\\standard", country="Germany", leverage=100, password="Plain1234"
    )

    stored = SimulatedMT5Account.objects.get(pk=account.login).password
    assert "Plain1234" not in stored
    assert check_password("Plain1234", stored)


@pytest.mark.django_db
def test_the_default_gateway_is_the_simulated_server(settings):
    settings.MT5_GATEWAY = "gateways.mt5.simulated.SimulatedMT5Gateway"
    reset_gateways()

    assert isinstance(get_mt5_gateway(), SimulatedMT5Gateway)
