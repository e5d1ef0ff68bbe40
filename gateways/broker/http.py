"""The real broker client: a JSON API at `settings.BROKER_API_URL`, the client's credentials
sent with every call (HTTP Basic plus the account type)."""

import base64
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from django.conf import settings

from gateways.errors import PermanentGatewayError
from gateways.http import json_object, request

from .types import BrokerConnection, BrokerCredentials, BrokerTrade, BrokerTradeResult, Direction

GATEWAY = "broker"


class HttpBrokerGateway:
    """Broker trading over HTTP; errors carry the server's `code` (see `BrokerGateway`)."""

    def ping(self) -> None:
        """Raise a `GatewayError` unless the server answers."""
        self._call("GET", "/v1/ping")

    def test_connection(self, credentials: BrokerCredentials) -> BrokerConnection:
        """Log in; wrong credentials give `connected=False`."""
        try:
            data = self._call("GET", "/v1/account", credentials)
        except PermanentGatewayError as exc:
            if exc.code != "auth_failed":
                raise
            return BrokerConnection(connected=False, balance=Decimal("0.00"))
        return BrokerConnection(connected=True, balance=Decimal(data["balance"]))

    def get_balance(self, credentials: BrokerCredentials) -> Decimal:
        """Return the account's balance."""
        return Decimal(self._call("GET", "/v1/account", credentials)["balance"])

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
        """Open a trade; the same `client_order_id` returns the same trade."""
        data = self._call(
            "POST",
            "/v1/trades",
            credentials,
            payload={
                "asset": asset,
                "direction": direction,
                "amount": str(amount),
                "duration_seconds": duration_seconds,
                "client_order_id": client_order_id,
            },
            # Safe to resend only because the broker dedupes on client_order_id: a retry after
            # a lost answer returns the first trade instead of staking twice.
            idempotent=True,
        )
        return BrokerTrade(
            trade_id=str(data["trade_id"]),
            asset=data["asset"],
            direction=data["direction"],
            amount=Decimal(data["amount"]),
            opened_at=datetime.fromisoformat(data["opened_at"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
        )

    def get_trade_result(self, credentials: BrokerCredentials, trade_id: str) -> BrokerTradeResult:
        """Return "open" until the trade expires, then its outcome."""
        data = self._call("GET", f"/v1/trades/{quote(str(trade_id), safe='')}", credentials)
        closed_at = data.get("closed_at")
        return BrokerTradeResult(
            trade_id=str(data["trade_id"]),
            status=data["status"],
            profit=Decimal(data["profit"]),
            closed_at=datetime.fromisoformat(closed_at) if closed_at else None,
        )

    def _call(
        self,
        method: str,
        path: str,
        credentials: BrokerCredentials | None = None,
        *,
        payload: dict[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        base = settings.BROKER_API_URL.rstrip("/")
        if not base:
            raise PermanentGatewayError(
                "BROKER_API_URL is not set", gateway=GATEWAY, code="not_configured"
            )
        headers = {}
        if credentials is not None:
            pair = f"{credentials.email}:{credentials.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            headers["X-Account-Type"] = credentials.account_type
        response = request(
            method,
            base + path,
            timeout=settings.BROKER_REQUEST_TIMEOUT_SECONDS,
            gateway=GATEWAY,
            retries=settings.GATEWAY_MAX_RETRIES,
            backoff=settings.GATEWAY_BACKOFF_SECONDS,
            idempotent=idempotent,
            json=payload,
            headers=headers,
        )
        return json_object(response, gateway=GATEWAY, name=f"{method} {path}")
