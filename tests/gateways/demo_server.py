"""A stand-in for MetaQuotes' partner API: verifies signatures, keeps accounts in memory."""

import hashlib
import hmac
import json
import re
import threading
from decimal import Decimal
from typing import Any

from django.utils import timezone

ACCOUNT = re.compile(r"^/v1/demo-accounts/(\d+)(/password|/disable)?$")


class DemoServer:
    """The partner API's behaviour as the contract tests need it, state behind one lock."""

    def __init__(self, *, api_key: str, secret: str, partner_id: str):
        self.api_key = api_key
        self.secret = secret
        self.partner_id = partner_id
        self.lock = threading.Lock()
        self.accounts: dict[int, dict[str, Any]] = {}
        self.by_idempotency_key: dict[str, int] = {}
        self.next_login = 90_000_001
        self.max_accounts = 10_000
        self.faults: list[int] = []  # statuses answered instead of handling, one per request
        self.faults_after: list[int] = []  # statuses answered after handling (a lost answer)
        self.idempotency_keys_seen: list[str] = []

    def handle(self, method, path, query, headers, body) -> tuple[int, Any]:
        headers = {name.lower(): value for name, value in headers.items()}
        with self.lock:
            if self.faults:
                return self.faults.pop(0), {"code": "unavailable", "detail": "try later"}
            if not self._signed(method, path, headers, body):
                return 401, {"code": "bad_signature", "detail": "signature does not match"}
            status, payload = self._route(method, path, headers, body or {})
            if self.faults_after:
                return self.faults_after.pop(0), {"code": "unavailable"}
            return status, payload

    def _signed(self, method: str, path: str, headers: dict[str, str], body: Any) -> bool:
        if headers.get("x-api-key") != self.api_key:
            return False
        if headers.get("x-partner-id") != self.partner_id:
            return False
        raw = "" if body is None else json.dumps(body, separators=(",", ":"), sort_keys=True)
        message = f"{method}\n{path}\n{headers.get('x-timestamp', '')}\n{raw}"
        expected = hmac.new(self.secret.encode(), message.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("x-signature", ""))

    def _route(self, method: str, path: str, headers: dict[str, str], body: dict):
        if (method, path) == ("GET", "/v1/ping"):
            return 200, {"status": "ok"}
        if (method, path) == ("POST", "/v1/demo-accounts"):
            return self._create(headers.get("idempotency-key", ""), body)
        match = ACCOUNT.match(path)
        if not match:
            return 404, {"code": "not_found"}
        account = self.accounts.get(int(match.group(1)))
        if account is None:
            return 404, {"code": "account_not_found", "detail": "no such account"}
        action = match.group(2)
        if method == "GET" and action is None:
            return 200, {
                "login": account["login"],
                "enabled": account["enabled"],
                "connected": False,
                "balance": account["balance"],
                "equity": account["balance"],
            }
        if method == "POST" and action == "/password":
            if len(body.get("password", "")) < 8:
                return 400, {"code": "bad_request", "detail": "password too short"}
            account["password"] = body["password"]
            return 200, {}
        if method == "POST" and action == "/disable":
            account["enabled"] = False
            return 200, {}
        return 405, {"code": "method_not_allowed"}

    def _create(self, key: str, body: dict):
        self.idempotency_keys_seen.append(key)
        if not key:
            return 400, {"code": "bad_request", "detail": "Idempotency-Key is required"}
        if key in self.by_idempotency_key:
            return 200, self._public(self.accounts[self.by_idempotency_key[key]])
        currency = str(body.get("currency", ""))
        if (
            Decimal(body.get("balance", "0")) <= 0
            or not 1 <= int(body.get("leverage", 0)) <= 1000
            or not (len(currency) == 3 and currency.isalpha() and currency.isupper())
            or not str(body.get("name", "")).strip()
        ):
            return 400, {"code": "bad_request", "detail": "bad parameters"}
        if sum(a["enabled"] for a in self.accounts.values()) >= self.max_accounts:
            return 403, {"code": "limit_reached", "detail": "partner quota used up"}
        login = self.next_login
        self.next_login += 1
        self.accounts[login] = {
            "login": login,
            "password": f"Standin-{login}",
            "server": "Standin-Demo",
            "balance": body["balance"],
            "leverage": int(body["leverage"]),
            "currency": currency,
            "enabled": True,
            "created_at": timezone.now().isoformat(),
        }
        self.by_idempotency_key[key] = login
        return 201, self._public(self.accounts[login])

    @staticmethod
    def _public(account: dict[str, Any]) -> dict[str, Any]:
        return {
            key: account[key]
            for key in (
                "login",
                "password",
                "server",
                "balance",
                "leverage",
                "currency",
                "created_at",
            )
        }
