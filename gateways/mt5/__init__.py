"""The MT5 manager gateway: the Protocol, its result types and the configured instance."""

from gateways.loading import load_gateway

from .protocol import MT5ManagerGateway
from .types import (
    COMMENT_MAX_LENGTH,
    AccountState,
    DealAction,
    DealEntry,
    MT5Account,
    MT5Deal,
    MT5Position,
    PositionSide,
)

__all__ = [
    "COMMENT_MAX_LENGTH",
    "AccountState",
    "DealAction",
    "DealEntry",
    "MT5Account",
    "MT5Deal",
    "MT5ManagerGateway",
    "MT5Position",
    "PositionSide",
    "get_mt5_gateway",
]


def get_mt5_gateway() -> MT5ManagerGateway:
    """Return the gateway named by `settings.MT5_GATEWAY` (one instance per process)."""
    return load_gateway("MT5_GATEWAY")
