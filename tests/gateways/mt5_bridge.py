"""A stand-in MT5 Manager REST bridge for the HTTP client's tests, state in memory.

It speaks the API documented in `gateways/mt5/http.py` and keeps the same rules as the
simulated server (credit never below zero, no withdrawal beyond the balance, ...), so the one
contract suite can run against both. Its state lives in Python objects behind one lock (the
server answers on its own threads), never in the test database. Tests steer it with
`expire_tokens()`, `answer_next()` (a canned answer for the next call to a path) and `slow`
(seconds to wait after doing the work, before answering: the write happened, the answer is late).
"""

import hashlib
import itertools
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateways.mt5.http import HttpMT5Gateway
from tests.gateways.standin import StandIn

SERVER = "Bridge-Test"
MANAGER_LOGIN = 1000
MANAGER_PASSWORD = "manager-secret-pw"
FIRST_CREATED_LOGIN = 20001
CENT = Decimal("0.01")
_ACCOUNT_PATH = re.compile(r"^/accounts/(\d+)/([a-z-]+)$")


def _hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT))


def _error(status: int, code: str, detail: str = "") -> tuple[int, dict]:
    return status, {"code": code, "detail": detail or code}


@dataclass
class _Account:
    login: int
    name: str
    group: str
    country: str
    leverage: int
    password_hash: str
    lead_source: str = ""
    currency: str = "USD"
    balance: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    enabled: bool = True
    registered_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class FakeMT5Bridge:
    """The bridge's state and its request handler (give `handle` to a `StandIn`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accounts: dict[int, _Account] = {}
        self.deals: list[dict[str, Any]] = []
        self.positions: dict[int, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.connects = 0
        self.accept_tokens = True  # False: every token is refused, even a fresh one
        self.slow: dict[str, float] = {}
        self._canned: dict[str, list[tuple[int, Any]]] = {}
        self._tickets = itertools.count(1)
        self._position_tickets = itertools.count(1)

    # --- Steering --------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Forget every session, as a bridge restart or a token expiry would."""
        with self.lock:
            self.tokens.clear()

    def answer_next(self, path: str, status: int, payload: Any = None, *, times: int = 1) -> None:
        """Answer the next `times` calls to `path` with `status`/`payload`, doing nothing."""
        payload = {"code": f"http_{status}"} if payload is None else payload
        with self.lock:
            self._canned.setdefault(path, []).extend([(status, payload)] * times)

    # --- Playing the clients and the market ------------------------------------------------

    def add_account(
        self,
        *,
        login: int | None = None,
        name: str = "Test Client",
        group: str = "real\\standard",
        country: str = "United Kingdom",
        leverage: int = 100,
        balance: Decimal | int | str = 0,
        credit: Decimal | int | str = 0,
        lead_source: str = "",
    ) -> int:
        """Create an account with a deposit deal and a credit deal for its starting money."""
        with self.lock:
            login = login or self._next_login()
            self.accounts[login] = _Account(
                login=login,
                name=name,
                group=group,
                country=country,
                leverage=leverage,
                password_hash="!",
                lead_source=lead_source,
            )
            for kind, amount in (("balance", balance), ("credit", credit)):
                if Decimal(amount):
                    self._move(login, kind, Decimal(amount), "Deposit")
        return login

    def open_position(self, login: int, *, symbol: str, side: str, volume, profit=0) -> int:
        """Open a position and book its IN deal; return the position ticket."""
        with self.lock:
            ticket = next(self._position_tickets)
            self.positions[ticket] = {
                "ticket": ticket,
                "login": login,
                "symbol": symbol,
                "side": side,
                "volume": Decimal(volume),
                "open_price": Decimal("1.00000"),
                "profit": Decimal(profit),
            }
            self._book(login, action=side, entry="in", position=self.positions[ticket])
        return ticket

    def close_position(self, ticket: int, *, profit=None, comment: str = "") -> int:
        """Close one position at `profit` (default: its floating profit)."""
        with self.lock:
            position = self.positions[ticket]
            if profit is not None:
                position["profit"] = Decimal(profit)
            return self._close(position, comment)

    def password_matches(self, login: int, password: str) -> bool:
        with self.lock:
            return self.accounts[login].password_hash == _hash(password)

    # --- The HTTP side ---------------------------------------------------------------------

    def handle(self, method: str, path: str, query, headers, body) -> tuple[int, Any]:
        """Answer one request (the StandIn calls this on its own threads)."""
        with self.lock:
            canned = self._canned.get(path)
            if canned:
                return canned.pop(0)
            if (method, path) == ("POST", "/connect"):
                return self._connect(body or {})
            token = headers.get("Authorization", "").removeprefix("Bearer ")
            if not self.accept_tokens or token not in self.tokens:
                return _error(401, "unauthorized", "invalid or expired token")
            answer = self._route(method, path, query, body or {})
        if path in self.slow:
            time.sleep(self.slow[path])  # the work is done; only the answer is late
        return answer

    def _connect(self, body: dict) -> tuple[int, Any]:
        self.connects += 1
        expected = {"server": SERVER, "login": MANAGER_LOGIN, "password": MANAGER_PASSWORD}
        if body != expected:
            return _error(401, "bad_credentials", "wrong manager login or password")
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return 200, {"token": token}

    def _route(self, method: str, path: str, query, body: dict) -> tuple[int, Any]:
        if method == "GET" and path == "/ping":
            return 200, {"ok": True}
        if method == "GET" and path == "/logins":
            return 200, {"logins": sorted(self.accounts)}
        if method == "GET" and path == "/groups":
            return 200, {"groups": sorted({a.group for a in self.accounts.values()})}
        if method == "GET" and path == "/countries":
            countries = {a.country for a in self.accounts.values() if a.country}
            return 200, {"countries": sorted(countries)}
        if method == "POST" and path == "/accounts/query":
            found = [self.accounts[x] for x in body["logins"] if x in self.accounts]
            return 200, {"accounts": [self._account_json(a) for a in found]}
        if method == "POST" and path == "/accounts/states":
            found = [
                self._account_json(self.accounts[x]) for x in body["logins"] if x in self.accounts
            ]
            rows = [
                [a["login"], a["balance"], a["credit"], a["equity"], a["leverage"]] for a in found
            ]
            return 200, {"states": rows}
        if method == "POST" and path == "/accounts":
            return self._create(body)
        if method == "POST" and path == "/deals/query":
            return 200, {"deals": self._deals_after(body["cursors"], body.get("since"))}
        if method == "POST" and path == "/positions/query":
            logins = set(body["logins"])
            found = [p for t, p in sorted(self.positions.items()) if p["login"] in logins]
            return 200, {"positions": [self._position_json(p) for p in found]}
        match = _ACCOUNT_PATH.match(path)
        if match:
            login, action = int(match.group(1)), match.group(2)
            if method == "GET" and action == "deals":
                return 200, {"deal": self._by_comment(login, query.get("comment", [""])[0])}
            if login not in self.accounts:
                return _error(404, "account_not_found", f"account {login} not found")
            return self._write(login, action, body)
        return _error(404, "not_found", f"{method} {path}")

    def _write(self, login: int, action: str, body: dict) -> tuple[int, Any]:
        account = self.accounts[login]
        if action in ("balance", "credit"):
            amount = Decimal(body["amount"])
            if not amount:
                return _error(400, "invalid_amount")
            if getattr(account, action) + amount < 0:
                return _error(400, f"insufficient_{action}")
            return 200, {"ticket": self._move(login, action, amount, body["comment"])}
        if action == "close-positions":
            mine = [p for t, p in sorted(self.positions.items()) if p["login"] == login]
            return 200, {"tickets": [self._close(p, body["comment"]) for p in mine]}
        if action == "leverage":
            if body["leverage"] < 1:
                return _error(400, "invalid_leverage")
            account.leverage = body["leverage"]
        elif action == "password":
            if len(body["password"]) < 8:
                return _error(400, "invalid_password")
            account.password_hash = _hash(body["password"])
        elif action == "enabled":
            account.enabled = body["enabled"]
        else:
            return _error(404, "not_found")
        return 200, {}

    def _create(self, body: dict) -> tuple[int, Any]:
        if body["leverage"] < 1:
            return _error(400, "invalid_leverage")
        if len(body["password"]) < 8:
            return _error(400, "invalid_password")
        login = self._next_login()
        self.accounts[login] = _Account(
            login=login,
            name=body["name"],
            group=body["group"],
            country=body["country"],
            leverage=body["leverage"],
            password_hash=_hash(body["password"]),
            lead_source=body["lead_source"],
            currency=body["currency"],
        )
        return 201, {"account": self._account_json(self.accounts[login])}

    # --- The server's bookkeeping (caller holds the lock) ---------------------------------

    def _next_login(self) -> int:
        return max([FIRST_CREATED_LOGIN - 1, *self.accounts]) + 1

    def _move(self, login: int, kind: str, amount: Decimal, comment: str) -> int:
        account = self.accounts[login]
        setattr(account, kind, getattr(account, kind) + amount)
        return self._book(login, action=kind, entry="none", profit=amount, comment=comment)

    def _close(self, position: dict, comment: str) -> int:
        del self.positions[position["ticket"]]
        self.accounts[position["login"]].balance += position["profit"]
        closing = "sell" if position["side"] == "buy" else "buy"
        return self._book(
            position["login"],
            action=closing,
            entry="out",
            position=position,
            profit=position["profit"],
            comment=comment,
        )

    def _book(self, login, *, action, entry, position=None, profit=Decimal(0), comment="") -> int:
        ticket = next(self._tickets)
        self.deals.append(
            {
                "ticket": ticket,
                "login": login,
                "time": datetime.now(UTC),
                "action": action,
                "entry": entry,
                "symbol": position["symbol"] if position else "",
                "volume": position["volume"] if position else Decimal(0),
                "price": position["open_price"] if position else Decimal(0),
                "profit": profit,
                "comment": comment,
                "position_id": position["ticket"] if position else 0,
            }
        )
        return ticket

    def _deals_after(self, cursors: dict[str, int], since: str | None) -> list[dict]:
        floor = datetime.fromisoformat(since) if since else None
        return [
            self._deal_json(d)
            for d in self.deals
            if str(d["login"]) in cursors
            and d["ticket"] > cursors[str(d["login"])]
            and (floor is None or d["time"] >= floor)
        ]

    def _by_comment(self, login: int, comment: str) -> dict | None:
        mine = [d for d in self.deals if d["login"] == login and d["comment"] == comment]
        return self._deal_json(mine[-1]) if mine else None

    def _account_json(self, account: _Account) -> dict:
        floating = sum(
            (p["profit"] for p in self.positions.values() if p["login"] == account.login),
            Decimal(0),
        )
        return {
            "login": account.login,
            "name": account.name,
            "group": account.group,
            "country": account.country,
            "lead_source": account.lead_source,
            "balance": _money(account.balance),
            "credit": _money(account.credit),
            "equity": _money(account.balance + account.credit + floating),
            "leverage": account.leverage,
            "currency": account.currency,
            "enabled": account.enabled,
            "registered_at": account.registered_at.isoformat(),
        }

    def _deal_json(self, deal: dict) -> dict:
        return {
            **deal,
            "time": deal["time"].isoformat(),
            "volume": str(deal["volume"]),
            "price": str(deal["price"]),
            "profit": _money(deal["profit"]),
        }

    def _position_json(self, position: dict) -> dict:
        return {
            **position,
            "volume": str(position["volume"]),
            "open_price": str(position["open_price"]),
            "profit": _money(position["profit"]),
        }


@contextmanager
def running_bridge(settings) -> Iterator[tuple[FakeMT5Bridge, StandIn, HttpMT5Gateway]]:
    """Start a bridge on a real socket and point a fresh HTTP client at it (pytest-django's
    `settings` fixture undoes the settings afterwards)."""
    bridge = FakeMT5Bridge()
    with StandIn(bridge.handle) as standin:
        settings.MT5_BRIDGE_URL = standin.url
        settings.MT5_SERVER = SERVER
        settings.MT5_MANAGER_LOGIN = str(MANAGER_LOGIN)
        settings.MT5_MANAGER_PASSWORD = MANAGER_PASSWORD
        settings.GATEWAY_BACKOFF_SECONDS = 0
        yield bridge, standin, HttpMT5Gateway()
