"""The interface of the broker that runs clients' binary-option-style trades."""

from decimal import Decimal
from typing import Protocol

from .types import BrokerConnection, BrokerCredentials, BrokerTrade, BrokerTradeResult, Direction


class BrokerGateway(Protocol):
    """Trades on a client's own broker account, with the client's credentials.

    Errors: `TransientGatewayError` (worth retrying), `PermanentGatewayError` with `code`
    "auth_failed", "insufficient_funds", "bad_request" or "trade_not_found".
    """

    def ping(self) -> None:
        """Raise a `GatewayError` unless the server answers."""

    def test_connection(self, credentials: BrokerCredentials) -> BrokerConnection:
        """Log in; wrong credentials give `connected=False`, not an error."""

    def get_balance(self, credentials: BrokerCredentials) -> Decimal:
        """Return the account's balance, settled trades included."""

    def open_trade(
        self,
        credentials: BrokerCredentials,
        *,
        asset: str,
        direction: Direction,
        amount: Decimal,
        duration_seconds: int,
        client_order_id: str,
    ) -> BrokerTrade:
        """Stake `amount` (debited now); the same `client_order_id` returns the same trade."""

    def get_trade_result(self, credentials: BrokerCredentials, trade_id: str) -> BrokerTradeResult:
        """Return the trade's status: "open" until it expires, then its settled outcome."""
