"""The trading gauges on /metrics, and the simulated broker's replayable outcomes."""

from decimal import Decimal

import pytest

from gateways.broker import BrokerCredentials, get_broker_gateway
from gateways.models import SimulatedBrokerAccount, SimulatedBrokerTrade
from trading_sessions.services import signal_receive

pytestmark = pytest.mark.django_db


def test_metrics_show_active_sessions_trades_per_minute_and_the_last_fan_out(
    client, make_user, make_session, subscribed, channel, settings
):
    settings.METRICS_TOKEN = ""
    for _ in range(3):
        make_session(subscribed(make_user()))
    make_session(make_user(), start=False)
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)

    body = client.get("/metrics").content.decode()

    assert "brokerdesk_trading_active_sessions 3.0" in body
    assert "brokerdesk_trading_trades_per_minute 3.0" in body
    assert "brokerdesk_trading_trades_unsettled 3.0" in body
    assert "brokerdesk_trading_signal_fanout_trades 3.0" in body
    assert "brokerdesk_trading_signal_fanout_seconds" in body


def _run(settings, seed: str) -> list[str]:
    """Ten trades on a fresh 50% account: their outcomes, in order."""
    settings.SIMULATED_BROKER_SEED = seed
    SimulatedBrokerAccount.objects.all().delete()
    credentials = BrokerCredentials("replay@broker.test", "pw", "demo")
    gateway = get_broker_gateway()
    gateway.test_connection(credentials)
    for n in range(10):
        gateway.open_trade(
            credentials,
            asset="EURUSD",
            direction="call",
            amount=Decimal("1.00"),
            duration_seconds=60,
            client_order_id=f"{seed}-{n}-{id(object())}",  # new ids each run
        )
    return list(SimulatedBrokerTrade.objects.order_by("pk").values_list("outcome", flat=True))


def test_the_same_seed_replays_the_same_outcomes_and_another_seed_does_not(settings):
    first, again, other = _run(settings, "alpha"), _run(settings, "alpha"), _run(settings, "beta")

    assert first == again
    assert first != other
    assert {"win", "loss"} <= set(first + other)


def test_new_accounts_get_the_configured_payout(settings):
    settings.SIMULATED_BROKER_PAYOUT = 0.92
    get_broker_gateway().test_connection(BrokerCredentials("payout@broker.test", "pw", "demo"))

    assert SimulatedBrokerAccount.objects.get().payout == Decimal("0.92")
