"""Broker trading: clients' automated binary-option-style trades on their own accounts."""

from gateways.loading import load_gateway

from .protocol import BrokerGateway
from .types import (
    AccountType,
    BrokerConnection,
    BrokerCredentials,
    BrokerTrade,
    BrokerTradeResult,
    Direction,
    TradeStatus,
)

__all__ = [
    "AccountType",
    "BrokerConnection",
    "BrokerCredentials",
    "BrokerGateway",
    "BrokerTrade",
    "BrokerTradeResult",
    "Direction",
    "TradeStatus",
    "get_broker_gateway",
]


def get_broker_gateway() -> BrokerGateway:
    """Return the broker trading gateway named in `settings.BROKER_GATEWAY`."""
    return load_gateway("BROKER_GATEWAY")
