"""The MT5 manager gateway over HTTP: a client of an MT5 Manager REST bridge.

The bridge is an mtapi-style wrapper around the MT5 Manager API. Its API, JSON both ways:
money as decimal strings ("1250.00"), volumes in lots as decimal strings, times ISO 8601 UTC,
logins and tickets as integers. An error answers 4xx/5xx with `{"code": ..., "detail": ...}`.

    POST /connect                    {server, login, password}         -> {token}
    Every other call sends `Authorization: Bearer <token>`; an expired or unknown token gets
    401 `{"code": "unauthorized"}`. An unknown login on a write gets 404 `account_not_found`.
    GET  /ping                                                          -> {ok: true}
    GET  /logins                                                        -> {logins: [int]}
    GET  /groups                                                        -> {groups: [str]}
    GET  /countries                                                     -> {countries: [str]}
    POST /accounts/query             {logins: [int]}                    -> {accounts: [Account]}
    POST /accounts/states            {logins: [int]}                    -> {states: [State]}
    POST /accounts                   {name, group, country, leverage, password, lead_source,
                                      currency}                         -> 201 {account: Account}
    POST /accounts/{login}/balance   {amount, comment}                  -> {ticket}
    POST /accounts/{login}/credit    {amount, comment}                  -> {ticket}
    POST /accounts/{login}/leverage  {leverage}                         -> {}
    POST /accounts/{login}/password  {password}                         -> {}
    POST /accounts/{login}/enabled   {enabled}                          -> {}
    POST /accounts/{login}/close-positions  {comment}                   -> {tickets: [int]}
    GET  /accounts/{login}/deals?comment=<comment>                      -> {deal: Deal | null}
    POST /deals/query                {cursors: {"<login>": ticket}, since: time | null}
                                                                        -> {deals: [Deal]}
    POST /positions/query            {logins: [int]}                    -> {positions: [Position]}

    Account  {login, name, group, country, lead_source, balance, credit, equity, leverage,
              currency, enabled, registered_at}
    State    [login, balance, credit, equity, leverage]   (a row, not an object: compact)
    Deal     {ticket, login, time, action, entry, symbol, volume, price, profit, comment,
              position_id}
    Position {ticket, login, symbol, side, volume, open_price, profit}

The batched reads are POSTs only to carry a body; they are sent as idempotent and retried.
Writes are sent once: a timeout raises `UnknownOutcomeError`. The session token is taken
lazily, shared by the instance's threads, and renewed once when the bridge answers 401.
"""

import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings

from gateways import http
from gateways.errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError

from .types import (
    AccountState,
    MT5Account,
    MT5Deal,
    MT5Position,
    check_comment,
    to_money,
)

GATEWAY = "mt5"
T = TypeVar("T")
# A write answered by one of these may have been done before it failed (a proxy's 504, a
# bridge that crashed after the server applied it): the caller must look it up, not resend.
_MAYBE_DONE_STATUSES = frozenset({500, 502, 504})
# `gateways.http.request` names the HTTP status in its error message; it is the only place
# the status survives.


class HttpMT5Gateway:
    """An MT5 manager reached through the REST bridge at `settings.MT5_BRIDGE_URL`."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._token_lock = threading.Lock()

    # --- The Protocol ---------------------------------------------------------------------

    def ping(self) -> None:
        """Return if the bridge answers with a valid session."""
        self._call("GET", "/ping", lambda body: None)

    def get_accounts(self, logins: Iterable[int]) -> dict[int, MT5Account]:
        """Return the accounts of `logins` in one call; unknown logins are absent."""
        wanted = sorted({int(login) for login in logins})
        accounts = self._call(
            "POST",
            "/accounts/query",
            lambda body: [_account(item) for item in body["accounts"]],
            json={"logins": wanted},
        )
        return {account.login: account for account in accounts}

    def get_states(self, logins: Iterable[int]) -> dict[int, AccountState]:
        """Return the watched numbers of `logins` in one call, as compact rows."""
        wanted = sorted({int(login) for login in logins})
        return self._call(
            "POST",
            "/accounts/states",
            lambda body: {
                int(row[0]): AccountState(*(_money(value) for value in row[1:4]), int(row[4]))
                for row in body["states"]
            },
            json={"logins": wanted},
        )

    def list_logins(self) -> list[int]:
        """Return every login, ascending."""
        return self._call("GET", "/logins", lambda body: sorted(int(x) for x in body["logins"]))

    def list_groups(self) -> list[str]:
        """Return the server's groups, sorted."""
        return self._call("GET", "/groups", lambda body: sorted(str(x) for x in body["groups"]))

    def list_countries(self) -> list[str]:
        """Return the accounts' countries, sorted."""
        return self._call(
            "GET", "/countries", lambda body: sorted(str(x) for x in body["countries"])
        )

    def get_deals(
        self, *, cursors: Mapping[int, int], since: datetime | None = None
    ) -> list[MT5Deal]:
        """Return each login's deals after its cursor (and at or after `since`), by ticket."""
        payload = {
            "cursors": {str(int(login)): int(ticket) for login, ticket in cursors.items()},
            "since": since.isoformat() if since else None,
        }
        return self._call(
            "POST",
            "/deals/query",
            lambda body: sorted((_deal(item) for item in body["deals"]), key=_by_ticket),
            json=payload,
        )

    def get_positions(self, logins: Iterable[int]) -> list[MT5Position]:
        """Return the open positions of `logins`, by ticket."""
        return self._call(
            "POST",
            "/positions/query",
            lambda body: sorted((_position(item) for item in body["positions"]), key=_by_ticket),
            json={"logins": sorted({int(login) for login in logins})},
        )

    def close_positions(self, login: int, *, comment: str) -> list[int]:
        """Close every open position of `login`; return the closing deals' tickets."""
        check_comment(comment)
        return self._call(
            "POST",
            f"/accounts/{int(login)}/close-positions",
            lambda body: [int(ticket) for ticket in body["tickets"]],
            write=True,
            json={"comment": comment},
        )

    def post_balance(self, login: int, amount: Decimal, *, comment: str) -> int:
        """Deposit or withdraw; return the BALANCE deal's ticket."""
        return self._move_money("balance", login, amount, comment)

    def post_credit(self, login: int, amount: Decimal, *, comment: str) -> int:
        """Add or remove credit; return the CREDIT deal's ticket."""
        return self._move_money("credit", login, amount, comment)

    def set_leverage(self, login: int, leverage: int) -> None:
        """Set 1:`leverage`."""
        self._set(login, "leverage", {"leverage": int(leverage)})

    def create_account(
        self,
        *,
        name: str,
        group: str,
        country: str,
        leverage: int,
        password: str,
        lead_source: str = "",
        currency: str = "USD",
    ) -> MT5Account:
        """Create an account; the server picks the login."""
        payload = {
            "name": name,
            "group": group,
            "country": country,
            "leverage": int(leverage),
            "password": password,
            "lead_source": lead_source,
            "currency": currency,
        }
        return self._call(
            "POST", "/accounts", lambda body: _account(body["account"]), write=True, json=payload
        )

    def change_password(self, login: int, password: str) -> None:
        """Replace the account's main password."""
        self._set(login, "password", {"password": password})

    def set_enabled(self, login: int, enabled: bool) -> None:
        """Enable or disable the account."""
        self._set(login, "enabled", {"enabled": bool(enabled)})

    def find_deal_by_comment(self, login: int, comment: str) -> MT5Deal | None:
        """Return the latest deal of `login` with exactly this comment, or None."""
        return self._call(
            "GET",
            f"/accounts/{int(login)}/deals",
            lambda body: _deal(body["deal"]) if body["deal"] else None,
            params={"comment": comment},
        )

    # --- Internals ------------------------------------------------------------------------

    def _move_money(self, kind: str, login: int, amount: Decimal, comment: str) -> int:
        check_comment(comment)
        return self._call(
            "POST",
            f"/accounts/{int(login)}/{kind}",
            lambda body: int(body["ticket"]),
            write=True,
            json={"amount": str(to_money(amount)), "comment": comment},
        )

    def _set(self, login: int, what: str, payload: dict[str, Any]) -> None:
        self._call(
            "POST", f"/accounts/{int(login)}/{what}", lambda body: None, write=True, json=payload
        )

    def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        write: bool = False,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> T:
        """Send one bridge call with the session token, renewing the token once on 401."""
        token = self._session_token()
        renewed = False
        while True:
            try:
                response = self._send(
                    method,
                    path,
                    write=write,
                    json=json,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except PermanentGatewayError as exc:
                if _status(exc) != 401:
                    raise
                if renewed:
                    raise PermanentGatewayError(
                        f"{method} {path}: the bridge refused a fresh session",
                        gateway=GATEWAY,
                        code="unauthorized",
                    ) from exc
                # A 401 means the bridge did nothing, so even a write is safe to resend.
                token = self._session_token(stale=token)
                renewed = True
                continue
            except UnknownOutcomeError:
                raise
            except TransientGatewayError as exc:
                if write and _status(exc) in _MAYBE_DONE_STATUSES:
                    raise UnknownOutcomeError(str(exc), gateway=GATEWAY, code=exc.code) from exc
                raise
            with _answer(write=write):
                return parse(response.json())

    def _send(self, method: str, path: str, *, write: bool, **kwargs: Any):
        base = settings.MT5_BRIDGE_URL
        if not base:
            raise PermanentGatewayError(
                "MT5_BRIDGE_URL is not set", gateway=GATEWAY, code="not_configured"
            )
        return http.request(
            method,
            base.rstrip("/") + path,
            timeout=settings.MT5_REQUEST_TIMEOUT_SECONDS,
            gateway=GATEWAY,
            # Writes are never resent by the transport: the caller decides after a lookup.
            retries=0 if write else settings.GATEWAY_MAX_RETRIES,
            backoff=settings.GATEWAY_BACKOFF_SECONDS,
            idempotent=not write,
            **kwargs,
        )

    def _session_token(self, *, stale: str | None = None) -> str:
        """Return the session token, connecting if there is none or it is `stale`."""
        token = self._token
        if token is not None and token != stale:
            return token
        with self._token_lock:
            # Another thread may have reconnected while this one waited.
            if self._token is not None and self._token != stale:
                return self._token
            try:
                login = int(settings.MT5_MANAGER_LOGIN)
            except ValueError:
                raise PermanentGatewayError(
                    "MT5_MANAGER_LOGIN is not set", gateway=GATEWAY, code="not_configured"
                ) from None
            response = self._send(
                "POST",
                "/connect",
                write=False,  # connecting twice is harmless: retry it like a read
                json={
                    "server": settings.MT5_SERVER,
                    "login": login,
                    "password": settings.MT5_MANAGER_PASSWORD,
                },
            )
            with _answer(write=False):
                self._token = str(response.json()["token"])
            return self._token


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status", None)


@contextmanager
def _answer(*, write: bool):
    """Turn a malformed bridge answer into a typed error; after a write, its outcome is
    unknown (the server may have done it)."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
        error = UnknownOutcomeError if write else PermanentGatewayError
        raise error(
            "malformed answer from the MT5 bridge", gateway=GATEWAY, code="bad_response"
        ) from exc


def _by_ticket(item: MT5Deal | MT5Position) -> int:
    return item.ticket


def _decimal(value: Any) -> Decimal:
    # str() first: a bridge that sends JSON numbers must not turn 0.1 into 0.1000000000000000055.
    return Decimal(str(value))


def _money(value: Any) -> Decimal:
    return to_money(_decimal(value))


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _account(data: Mapping[str, Any]) -> MT5Account:
    return MT5Account(
        login=int(data["login"]),
        name=str(data["name"]),
        group=str(data["group"]),
        country=str(data["country"]),
        lead_source=str(data.get("lead_source") or ""),
        balance=_decimal(data["balance"]),
        credit=_decimal(data["credit"]),
        equity=_decimal(data["equity"]),
        leverage=int(data["leverage"]),
        currency=str(data["currency"]),
        enabled=bool(data["enabled"]),
        registered_at=_time(data["registered_at"]),
    )


def _deal(data: Mapping[str, Any]) -> MT5Deal:
    return MT5Deal(
        ticket=int(data["ticket"]),
        login=int(data["login"]),
        time=_time(data["time"]),
        action=data["action"],
        entry=data["entry"],
        symbol=str(data.get("symbol") or ""),
        volume=_decimal(data["volume"]),
        price=_decimal(data["price"]),
        profit=_decimal(data["profit"]),
        comment=str(data.get("comment") or ""),
        position_id=int(data.get("position_id") or 0),
    )


def _position(data: Mapping[str, Any]) -> MT5Position:
    return MT5Position(
        ticket=int(data["ticket"]),
        login=int(data["login"]),
        symbol=str(data["symbol"]),
        side=data["side"],
        volume=_decimal(data["volume"]),
        open_price=_decimal(data["open_price"]),
        profit=_decimal(data["profit"]),
    )
