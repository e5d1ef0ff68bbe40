"""A stand-in broker API: accounts and trades in memory, time from `timezone.now()` so it
follows time-machine (it runs in this process)."""

import base64
import re
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from gateways.broker.simulated import draw_outcome, trade_profit

TRADE = re.compile(r"^/v1/trades/([^/]+)$")
STARTING_BALANCE = {"demo": Decimal("10000.00"), "real": Decimal("0.00")}


class BrokerServer:
    """The broker's behaviour as the contract tests need it, state behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.accounts: dict[tuple[str, str], dict[str, Any]] = {}
        self.trades: dict[str, dict[str, Any]] = {}
        self.faults: list[int] = []  # statuses answered instead of handling, one per request
        self.faults_after: list[int] = []  # statuses answered after handling (a lost answer)
        self.win_rate = Decimal("0.50")
        self.draw_rate = Decimal("0.00")
        self.payout = Decimal("0.80")

    def handle(self, method, path, query, headers, body) -> tuple[int, Any]:
        headers = {name.lower(): value for name, value in headers.items()}
        with self.lock:
            if self.faults:
                return self.faults.pop(0), {"code": "unavailable"}
            status, payload = self._route(method, path, headers, body or {})
            if self.faults_after:
                return self.faults_after.pop(0), {"code": "unavailable"}
            return status, payload

    def _route(self, method: str, path: str, headers: dict[str, str], body: dict):
        if (method, path) == ("GET", "/v1/ping"):
            return 200, {"status": "ok"}
        account = self._login(headers)
        if account is None:
            return 401, {"code": "auth_failed", "detail": "wrong email or password"}
        self._settle_due(account)
        if (method, path) == ("GET", "/v1/account"):
            return 200, {"balance": str(account["balance"])}
        if (method, path) == ("POST", "/v1/trades"):
            return self._open(account, body)
        match = TRADE.match(path)
        if method == "GET" and match:
            trade = self.trades.get(match.group(1))
            if trade is None or trade["account"] is not account:
                return 404, {"code": "trade_not_found"}
            if timezone.now() < trade["expires_at"]:
                return 200, {
                    "trade_id": trade["trade_id"],
                    "status": "open",
                    "profit": "0.00",
                    "closed_at": None,
                }
            return 200, {
                "trade_id": trade["trade_id"],
                "status": trade["outcome"],
                "profit": str(trade_profit(trade["outcome"], trade["amount"], trade["payout"])),
                "closed_at": trade["expires_at"].isoformat(),
            }
        return 404, {"code": "not_found"}

    def _login(self, headers: dict[str, str]) -> dict[str, Any] | None:
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        account_type = headers.get("x-account-type", "")
        if scheme != "Basic" or account_type not in STARTING_BALANCE:
            return None
        email, _, password = base64.b64decode(encoded).decode().partition(":")
        key = (email.strip().lower(), account_type)
        if key not in self.accounts:
            self.accounts[key] = {"password": password, "balance": STARTING_BALANCE[account_type]}
        account = self.accounts[key]
        return account if account["password"] == password else None

    def _open(self, account: dict[str, Any], body: dict):
        order_id = str(body.get("client_order_id", ""))
        for trade in self.trades.values():
            if trade["account"] is account and trade["client_order_id"] == order_id:
                return 200, self._public(trade)
        amount = Decimal(str(body.get("amount", "0")))
        if (
            not order_id
            or body.get("direction") not in ("call", "put")
            or amount <= 0
            or not 5 <= int(body.get("duration_seconds", 0)) <= 86_400
        ):
            return 400, {"code": "bad_request", "detail": "bad parameters"}
        if account["balance"] < amount:
            return 409, {"code": "insufficient_funds", "detail": "insufficient funds"}
        account["balance"] -= amount
        opened_at = timezone.now()
        trade_id = f"T{len(self.trades) + 1}"
        self.trades[trade_id] = {
            "trade_id": trade_id,
            "account": account,
            "client_order_id": order_id,
            "asset": body["asset"],
            "direction": body["direction"],
            "amount": amount,
            "payout": self.payout,
            "outcome": draw_outcome(order_id, self.win_rate, self.draw_rate),
            "opened_at": opened_at,
            "expires_at": opened_at + timedelta(seconds=int(body["duration_seconds"])),
            "settled": False,
        }
        return 201, self._public(self.trades[trade_id])

    def _settle_due(self, account: dict[str, Any]) -> None:
        now = timezone.now()
        for trade in self.trades.values():
            if trade["account"] is account and not trade["settled"] and trade["expires_at"] <= now:
                trade["settled"] = True
                account["balance"] += trade["amount"] + trade_profit(
                    trade["outcome"], trade["amount"], trade["payout"]
                )

    @staticmethod
    def _public(trade: dict[str, Any]) -> dict[str, Any]:
        return {
            "trade_id": trade["trade_id"],
            "asset": trade["asset"],
            "direction": trade["direction"],
            "amount": str(trade["amount"]),
            "opened_at": trade["opened_at"].isoformat(),
            "expires_at": trade["expires_at"].isoformat(),
        }
