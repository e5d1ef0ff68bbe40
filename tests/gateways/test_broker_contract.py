"""One contract for the broker trading gateway, run against the simulated server and the
HTTP client (talking to a stand-in on a real socket)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from gateways.broker import BrokerCredentials, BrokerGateway, BrokerTrade, get_broker_gateway
from gateways.errors import PermanentGatewayError, TransientGatewayError
from gateways.loading import reset_gateways
from gateways.models import SimulatedBrokerAccount, SimulatedBrokerTrade, SimulatorKnobs

from .broker_server import BrokerServer
from .standin import StandIn

pytestmark = pytest.mark.django_db

DEMO = BrokerCredentials("trader@example.com", "Quotex-Pass-1", "demo")
REAL = BrokerCredentials("trader@example.com", "Quotex-Pass-1", "real")
WRONG_PASSWORD = BrokerCredentials("trader@example.com", "not-my-password", "demo")
OTHER = BrokerCredentials("someone@example.com", "Other-Pass-1", "demo")
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
RATES = {"win": (1, 0), "loss": (0, 0), "draw": (0, 1)}  # (win_rate, draw_rate)


@dataclass
class Broker:
    """The gateway under test plus a way to decide the outcome of the next trades."""

    gateway: BrokerGateway
    set_outcome: Callable[[BrokerCredentials, str], None]


@contextmanager
def standin_server(settings) -> Iterator[tuple[BrokerServer, StandIn]]:
    server = BrokerServer()
    with StandIn(server.handle) as standin:
        settings.BROKER_GATEWAY = "gateways.broker.http.HttpBrokerGateway"
        settings.BROKER_API_URL = standin.url
        settings.BROKER_REQUEST_TIMEOUT_SECONDS = 5
        settings.GATEWAY_MAX_RETRIES = 2
        settings.GATEWAY_BACKOFF_SECONDS = 0  # retries without waiting
        reset_gateways()
        yield server, standin
    reset_gateways()


def _set_simulated_outcome(gateway: BrokerGateway, credentials: BrokerCredentials, outcome: str):
    gateway.test_connection(credentials)  # the account exists from its first use
    win_rate, draw_rate = RATES[outcome]
    SimulatedBrokerAccount.objects.filter(email=credentials.email).update(
        win_rate=win_rate, draw_rate=draw_rate
    )


def _set_standin_outcome(server: BrokerServer, outcome: str) -> None:
    server.win_rate, server.draw_rate = (Decimal(rate) for rate in RATES[outcome])


@pytest.fixture(params=["simulated", "http"])
def broker(request, settings) -> Iterator[Broker]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if request.param == "simulated":
        settings.BROKER_GATEWAY = "gateways.broker.simulated.SimulatedBrokerGateway"
        reset_gateways()
        gateway = get_broker_gateway()
        yield Broker(
            gateway, lambda creds, outcome: _set_simulated_outcome(gateway, creds, outcome)
        )
        reset_gateways()
    else:
        with standin_server(settings) as (server, _):
            yield Broker(
                get_broker_gateway(), lambda _, outcome: _set_standin_outcome(server, outcome)
            )


def open_trade(gateway: BrokerGateway, order_id: str = "order-1", **overrides) -> BrokerTrade:
    params = {
        "asset": "EURUSD",
        "direction": "call",
        "amount": Decimal("10.00"),
        "duration_seconds": 60,
        "credentials": DEMO,
    } | overrides
    credentials = params.pop("credentials")
    return gateway.open_trade(credentials, client_order_id=order_id, **params)


def test_the_server_answers_a_ping(broker):
    broker.gateway.ping()


def test_new_demo_credentials_connect_with_the_starting_balance(broker):
    connection = broker.gateway.test_connection(DEMO)

    assert connection.connected
    assert connection.balance == Decimal("10000.00")
    assert broker.gateway.get_balance(DEMO) == Decimal("10000.00")


def test_a_new_real_account_starts_empty_and_apart_from_the_demo_one(broker):
    open_trade(broker.gateway, credentials=DEMO)

    assert broker.gateway.get_balance(REAL) == Decimal("0.00")
    assert broker.gateway.get_balance(DEMO) == Decimal("9990.00")


def test_a_wrong_password_does_not_connect_and_trade_calls_fail_with_auth_failed(broker):
    broker.gateway.test_connection(DEMO)

    connection = broker.gateway.test_connection(WRONG_PASSWORD)

    assert connection == type(connection)(connected=False, balance=Decimal("0.00"))
    for call in (
        lambda: broker.gateway.get_balance(WRONG_PASSWORD),
        lambda: open_trade(broker.gateway, credentials=WRONG_PASSWORD),
    ):
        with pytest.raises(PermanentGatewayError) as caught:
            call()
        assert caught.value.code == "auth_failed"
    assert broker.gateway.get_balance(DEMO) == Decimal("10000.00")


def test_opening_a_trade_debits_the_stake_once_however_often_it_is_sent(broker):
    first = open_trade(broker.gateway, "order-1")
    again = open_trade(broker.gateway, "order-1")
    other = open_trade(broker.gateway, "order-2")

    assert again == first
    assert other.trade_id != first.trade_id
    assert (first.asset, first.direction, first.amount) == ("EURUSD", "call", Decimal("10.00"))
    assert first.expires_at - first.opened_at == timedelta(seconds=60)
    assert broker.gateway.get_balance(DEMO) == Decimal("9980.00")


@pytest.mark.parametrize(
    ("outcome", "profit", "balance"),
    [
        ("win", Decimal("8.00"), Decimal("10008.00")),
        ("loss", Decimal("-10.00"), Decimal("9990.00")),
        ("draw", Decimal("0.00"), Decimal("10000.00")),
    ],
)
def test_a_trade_is_open_until_it_expires_and_then_settles_once(broker, outcome, profit, balance):
    broker.set_outcome(DEMO, outcome)
    with time_machine.travel(START, tick=False) as traveller:
        trade = open_trade(broker.gateway, amount=Decimal("10.00"), duration_seconds=60)
        traveller.shift(timedelta(seconds=59))

        result = broker.gateway.get_trade_result(DEMO, trade.trade_id)
        assert (result.status, result.profit, result.closed_at) == ("open", Decimal("0"), None)
        assert broker.gateway.get_balance(DEMO) == Decimal("9990.00")

        traveller.shift(timedelta(seconds=1))
        result = broker.gateway.get_trade_result(DEMO, trade.trade_id)
        again = broker.gateway.get_trade_result(DEMO, trade.trade_id)

    assert (result.trade_id, result.status, result.profit) == (trade.trade_id, outcome, profit)
    assert result.closed_at == trade.expires_at == START + timedelta(seconds=60)
    assert again == result
    assert broker.gateway.get_balance(DEMO) == balance


def test_an_expired_trade_is_credited_even_if_nobody_asked_for_its_result(broker):
    broker.set_outcome(DEMO, "win")
    with time_machine.travel(START, tick=False) as traveller:
        open_trade(broker.gateway)
        traveller.shift(timedelta(minutes=5))

        assert broker.gateway.get_balance(DEMO) == Decimal("10008.00")


def test_a_stake_above_the_balance_is_refused_as_insufficient_funds(broker):
    for credentials, amount in ((REAL, Decimal("1.00")), (DEMO, Decimal("10000.01"))):
        with pytest.raises(PermanentGatewayError) as caught:
            open_trade(broker.gateway, credentials=credentials, amount=amount)
        assert caught.value.code == "insufficient_funds"

    assert broker.gateway.get_balance(DEMO) == Decimal("10000.00")


@pytest.mark.parametrize(
    "overrides",
    [{"direction": "up"}, {"amount": Decimal("0.00")}, {"duration_seconds": 0}],
    ids=["direction", "amount", "duration"],
)
def test_bad_trade_parameters_are_a_permanent_bad_request(broker, overrides):
    with pytest.raises(PermanentGatewayError) as caught:
        open_trade(broker.gateway, **overrides)

    assert caught.value.code == "bad_request"
    assert broker.gateway.get_balance(DEMO) == Decimal("10000.00")


def test_a_trade_of_another_account_or_an_unknown_one_is_not_found(broker):
    trade = open_trade(broker.gateway, credentials=OTHER)

    for trade_id in (trade.trade_id, "999999"):
        with pytest.raises(PermanentGatewayError) as caught:
            broker.gateway.get_trade_result(DEMO, trade_id)
        assert caught.value.code == "trade_not_found"


def test_the_simulated_server_fails_transiently_when_its_error_rate_is_one(settings):
    settings.BROKER_GATEWAY = "gateways.broker.simulated.SimulatedBrokerGateway"
    reset_gateways()
    SimulatorKnobs.objects.create(server="broker", error_rate=1)

    with pytest.raises(TransientGatewayError):
        get_broker_gateway().ping()
    with pytest.raises(TransientGatewayError):
        open_trade(get_broker_gateway())
    assert not SimulatedBrokerTrade.objects.exists()


def test_an_open_trade_whose_answer_was_lost_is_retried_into_the_same_trade(settings):
    with standin_server(settings) as (server, standin):
        server.faults_after = [503]  # the trade was opened, then the answer failed

        trade = open_trade(get_broker_gateway(), "order-1")

        assert len(standin.requests) == 2
        assert list(server.trades) == [trade.trade_id]
        assert get_broker_gateway().get_balance(DEMO) == Decimal("9990.00")
