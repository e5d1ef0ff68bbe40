"""The real demo provisioning client: MetaQuotes' partner API over signed HTTPS requests."""

import hashlib
import hmac
import json
import time
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from gateways.errors import PermanentGatewayError
from gateways.http import json_object, request

from .types import DemoAccount, DemoAccountStatus

GATEWAY = "demo"


def sign(secret: str, method: str, path: str, timestamp: str, body: str) -> str:
    """Hex HMAC-SHA256 of the request, as the partner API expects in `X-Signature`."""
    message = f"{method}\n{path}\n{timestamp}\n{body}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class HttpDemoGateway:
    """Demo provisioning through the partner API at `settings.METAQUOTES_API_URL`.

    Every call here may be retried on transient errors: reads are safe, setting a password
    or disabling twice lands in the same state, and the create carries an Idempotency-Key.
    """

    def ping(self) -> None:
        """Raise a `GatewayError` unless the server answers."""
        self._call("GET", "/v1/ping")

    def create_demo_account(
        self,
        *,
        idempotency_id: str,
        name: str,
        balance: Decimal,
        leverage: int,
        currency: str,
        group: str = "demo\\standard",
    ) -> DemoAccount:
        """Create a demo account, or get back the one this idempotency id already created."""
        payload = {
            "name": name,
            "balance": str(balance),
            "leverage": leverage,
            "currency": currency,
            "group": group,
        }
        data = self._call(
            "POST", "/v1/demo-accounts", payload, extra_headers={"Idempotency-Key": idempotency_id}
        )
        return DemoAccount(
            login=int(data["login"]),
            password=data["password"],
            server=data["server"],
            balance=Decimal(data["balance"]),
            leverage=int(data["leverage"]),
            currency=data["currency"],
            created_at=datetime.fromisoformat(data["created_at"]),
        )

    def check_account(self, login: int) -> DemoAccountStatus:
        """Report on one account; an unknown login gives `exists=False`."""
        try:
            data = self._call("GET", f"/v1/demo-accounts/{int(login)}")
        except PermanentGatewayError as exc:
            if exc.code != "account_not_found":
                raise
            zero = Decimal("0.00")
            return DemoAccountStatus(login, False, False, False, zero, zero)
        return DemoAccountStatus(
            login=int(data["login"]),
            exists=True,
            enabled=bool(data["enabled"]),
            connected=bool(data["connected"]),
            balance=Decimal(data["balance"]),
            equity=Decimal(data["equity"]),
        )

    def change_password(self, login: int, password: str) -> None:
        """Set the account's master password."""
        self._call("POST", f"/v1/demo-accounts/{int(login)}/password", {"password": password})

    def disable_account(self, login: int) -> None:
        """Disable the account."""
        self._call("POST", f"/v1/demo-accounts/{int(login)}/disable", {})

    def _call(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        extra_headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        base = settings.METAQUOTES_API_URL.rstrip("/")
        if not base:
            raise PermanentGatewayError(
                "METAQUOTES_API_URL is not set", gateway=GATEWAY, code="not_configured"
            )
        url = base + path
        # The signature covers the exact bytes sent, so the body is serialized here, once.
        body = "" if payload is None else json.dumps(payload, separators=(",", ":"), sort_keys=True)
        timestamp = str(int(time.time()))
        headers = {
            "X-Api-Key": settings.METAQUOTES_API_KEY,
            "X-Partner-Id": settings.METAQUOTES_PARTNER_ID,
            "X-Timestamp": timestamp,
            "X-Signature": sign(
                settings.METAQUOTES_API_SECRET, method, urlsplit(url).path, timestamp, body
            ),
            **(extra_headers or {}),
        }
        if body:
            headers["Content-Type"] = "application/json"
        response = request(
            method,
            url,
            timeout=settings.DEMO_REQUEST_TIMEOUT_SECONDS,
            gateway=GATEWAY,
            retries=settings.GATEWAY_MAX_RETRIES,
            backoff=settings.GATEWAY_BACKOFF_SECONDS,
            idempotent=True,  # see the class docstring
            data=body.encode() if body else None,
            headers=headers,
        )
        return json_object(response, gateway=GATEWAY, name=f"{method} {path}")
