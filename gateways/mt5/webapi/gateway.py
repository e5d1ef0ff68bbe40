"""`MT5ManagerGateway` over MetaQuotes' Manager Web API (spec /work/shared/mt5-webapi.md).

Selected by `MT5_GATEWAY=gateways.mt5.webapi.gateway.WebApiMT5Gateway`; reads `MT5_WEBAPI_*`,
`MT5_MANAGER_LOGIN`/`MT5_MANAGER_PASSWORD` and `MT5_REQUEST_TIMEOUT_SECONDS`. Each Protocol
method on the real endpoints:

    get_states        user/account/get_batch per batch of logins; the logins it leaves out
                      (idle accounts have no trade state) from user/get_batch, equity =
                      balance + credit
    get_accounts      user/get_batch (+ user/account/get_batch for equity), group currency
                      from group/get, cached
    list_logins       user/logins?group=MT5_WEBAPI_GROUP_MASK
    list_groups       group/total + group/next, filtered by the mask
    list_countries    user/get_batch over the logins, in batches
    get_deals         deal/get_batch by login batches over a time window (the cursor deal's
                      time, or `since`, minus an overlap), deduped by ticket, then each login's
                      ticket cursor applied (the API has no "after ticket" query)
    get_positions     position/get_batch
    close_positions   dealer/send_request (action 200, opposite type, the position's ticket
                      and volume) for each position, then dealer/get_request_result polled to
                      a final result, bounded
    post_balance      trade/balance type 2 (check_margin=1 on withdrawals)
    post_credit       trade/balance type 3
    set_leverage      user/update leverage
    set_enabled       user/update Rights with USER_RIGHT_ENABLED (bit 0) set or cleared
    create_account    user/add (passwords in the body)
    change_password   user/change_password (body)
    find_deal_by_comment  deal/get_batch of the login over FIND_DEAL_WINDOW

Deal and registration times are trade-server time on the wire: the offset is measured at each
connect (`/api/time/server` against UTC, to 15 minutes) or taken from
`MT5_WEBAPI_TIME_OFFSET_SECONDS`, and every time the gateway returns is UTC.
"""

import fnmatch
import functools
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings

from gateways.errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError

from ..types import (
    CENT,
    AccountState,
    DealAction,
    DealEntry,
    MT5Account,
    MT5Deal,
    MT5Position,
    PositionSide,
    check_comment,
    to_money,
)
from .client import (
    GATEWAY,
    Stats,
    WebApiClient,
    parse_decimal,
    parse_int,
    parse_money,
    parse_server_time,
    server_seconds,
)
from .pool import ClientPool

USER_RIGHT_ENABLED = 1
DEAL_BALANCE = 2
DEAL_CREDIT = 3
TA_DEALER_POS_EXECUTE = 200
VOLUME_UNITS = Decimal(10000)  # Volume is in 1/10000 lot
# Deal times can lag or lead our clock by the server's skew: every window starts this early.
DEAL_WINDOW_OVERLAP = timedelta(minutes=10)
DEAL_WINDOW_AHEAD = timedelta(days=1)
# How far back an unknown outcome is looked up by its comment.
FIND_DEAL_WINDOW = timedelta(days=31)
# A dealer request is queued, then executed: poll its result at most this long.
CLOSE_RESULT_WAIT_SECONDS = 15.0
RESULT_DONE = frozenset({10008, 10009, 10010})  # placed, done, done partially
MAX_LEVERAGE = 500
MIN_PASSWORD_LENGTH = 8
GROUP_PAGE = 100
# Cursor deals' times learnt from answers, so a quiet monitor batch needs no ticket lookup.
_DEAL_TIME_CACHE_MAX = 500_000

_ACTIONS = {
    0: DealAction.BUY,
    1: DealAction.SELL,
    2: DealAction.BALANCE,
    3: DealAction.CREDIT,
    4: DealAction.CHARGE,
    5: DealAction.CORRECTION,
    7: DealAction.COMMISSION,
    8: DealAction.COMMISSION,
    9: DealAction.COMMISSION,
    19: DealAction.SO_COMPENSATION,
    20: DealAction.SO_COMPENSATION,
}
_ENTRIES = {0: DealEntry.IN, 1: DealEntry.OUT, 2: DealEntry.INOUT, 3: DealEntry.OUT}


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _answer_list(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    body = answer.get("answer")
    if isinstance(body, list):
        return [item for item in body if isinstance(item, dict)]
    if isinstance(body, dict):
        return [body]
    return []


def _answer_object(answer: Mapping[str, Any]) -> dict[str, Any]:
    body = answer.get("answer")
    return body if isinstance(body, dict) else {}


def mask_matches(masks: str, group: str) -> bool:
    """MT5 group masks: comma list, `*` wildcard, `!` excludes (case-insensitive)."""
    included = False
    for mask in (part.strip() for part in masks.split(",")):
        if not mask:
            continue
        if mask.startswith("!"):
            if fnmatch.fnmatchcase(group.lower(), mask[1:].lower()):
                return False
        elif fnmatch.fnmatchcase(group.lower(), mask.lower()):
            included = True
    return included


def _parsed(*, write: bool):
    """A malformed answer (a value that is no number, a missing field) is a typed error: for
    a read, permanent `bad_response`; after a write, an unknown outcome (it may be done)."""

    def wrap(method):
        @functools.wraps(method)
        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
                error = UnknownOutcomeError if write else PermanentGatewayError
                raise error(
                    f"malformed answer from the MT5 Web API ({exc})",
                    gateway=GATEWAY,
                    code="bad_response",
                ) from exc

        return call

    return wrap


def _session(method):
    """Run the method on one pooled session, taken for its whole duration (a dealer request
    and its results must share a connection); a nested call keeps the caller's session."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        local = self._local
        if getattr(local, "client", None) is not None:
            return method(self, *args, **kwargs)
        with self.pool.session() as client:
            local.client = client
            try:
                return method(self, *args, **kwargs)
            finally:
                local.client = None

    return call


def _strong_password() -> str:
    # MT5 asks for lower, upper, digit and a special character (investor password: unused).
    body = secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")[:10]
    return "Aa1#" + body


class WebApiMT5Gateway:
    """Manager sessions on an MT5 server's Web API: a pool of at most
    `MT5_WEBAPI_CONNECTIONS` authenticated connections per instance (`connections=`), each
    call on one of them. Thread-safe: threads run their calls on different connections."""

    def __init__(
        self,
        *,
        url: str | None = None,
        login: int | str | None = None,
        password: str | None = None,
        group_mask: str | None = None,
        batch_size: int | None = None,
        time_offset_seconds: int | None = None,
        client: WebApiClient | None = None,
        connections: int | None = None,
    ) -> None:
        self._options: dict[str, Any] = {
            "url": url,
            "login": login,
            "password": password,
            "time_offset_seconds": time_offset_seconds,
        }
        self._group_mask = group_mask
        self._batch_size = batch_size
        self._connections = connections
        self._pool = ClientPool.of(client) if client is not None else None
        self._pool_lock = threading.Lock()
        self._local = threading.local()
        self._currencies: dict[str, str] = {}
        self._deal_times: dict[int, int] = {}  # ticket -> server seconds

    # --- Configuration --------------------------------------------------------------------

    @property
    def pool(self) -> ClientPool:
        """The sessions, built from settings on first use."""
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    size = self._connections or settings.MT5_WEBAPI_CONNECTIONS
                    self._pool = ClientPool(
                        self._build_client,
                        max(1, int(size)),
                        wait_seconds=settings.MT5_REQUEST_TIMEOUT_SECONDS,
                    )
        return self._pool

    @property
    def client(self) -> WebApiClient:
        """The session this thread's call runs on (outside a call: the one it would use)."""
        return getattr(self._local, "client", None) or self.pool.peek()

    def stats(self) -> Stats:
        """HTTP calls, bytes and logins of every session so far."""
        return self.pool.stats()

    def close(self) -> None:
        """Log every session out."""
        self.pool.close()

    def _build_client(self) -> WebApiClient:
        url = self._options["url"] or settings.MT5_WEBAPI_URL
        if not url:
            raise PermanentGatewayError(
                "MT5_WEBAPI_URL is not set", gateway=GATEWAY, code="not_configured"
            )
        try:
            login = int(self._options["login"] or settings.MT5_MANAGER_LOGIN)
        except (TypeError, ValueError):
            raise PermanentGatewayError(
                "MT5_MANAGER_LOGIN is not set", gateway=GATEWAY, code="not_configured"
            ) from None
        offset = self._options["time_offset_seconds"]
        if offset is None:
            offset = settings.MT5_WEBAPI_TIME_OFFSET_SECONDS
        password = self._options["password"]
        return WebApiClient(
            url=url,
            login=login,
            password=settings.MT5_MANAGER_PASSWORD if password is None else password,
            timeout=settings.MT5_REQUEST_TIMEOUT_SECONDS,
            ca_bundle=settings.MT5_WEBAPI_CA_BUNDLE,
            cert_sha256=settings.MT5_WEBAPI_CERT_SHA256,
            time_offset_seconds=offset,
        )

    @property
    def group_mask(self) -> str:
        return self._group_mask or settings.MT5_WEBAPI_GROUP_MASK or "*"

    @property
    def batch_size(self) -> int:
        return max(1, int(self._batch_size or settings.MT5_WEBAPI_BATCH_SIZE))

    def _offset(self) -> int:
        return self.client.session_offset()

    # --- The Protocol ---------------------------------------------------------------------

    @_session
    def ping(self) -> None:
        """Return if the session answers `/api/test/access`."""
        self.client.ping()

    @_parsed(write=False)
    @_session
    def get_states(self, logins: Iterable[int]) -> dict[int, AccountState]:
        """Balance, credit, equity, leverage of `logins`: one call per batch, two when some
        accounts are idle (no trade state on the server since its restart)."""
        wanted = sorted({int(login) for login in logins})
        states: dict[int, AccountState] = {}
        for batch in _chunks(wanted, self.batch_size):
            answer = self.client.call("/api/user/account/get_batch", {"login": batch})
            for item in _answer_list(answer):
                login, state = _state(item)
                if state is not None:
                    states[login] = state
            missing = [login for login in batch if login not in states]
            if missing:
                for user in self._users(missing):
                    balance, credit = (
                        parse_money(user.get("Balance")),
                        parse_money(user.get("Credit")),
                    )
                    states[parse_int(user.get("Login"))] = AccountState(
                        balance, credit, balance + credit, parse_int(user.get("Leverage"))
                    )
        return {login: states[login] for login in wanted if login in states}

    @_parsed(write=False)
    @_session
    def get_accounts(self, logins: Iterable[int]) -> dict[int, MT5Account]:
        """The accounts of `logins`; unknown logins are absent."""
        wanted = sorted({int(login) for login in logins})
        accounts: dict[int, MT5Account] = {}
        offset = self._offset()
        for batch in _chunks(wanted, self.batch_size):
            users = self._users(batch)
            if not users:
                continue
            equity = {
                parse_int(item.get("Login")): parse_money(item.get("Equity"))
                for item in _answer_list(
                    self.client.call("/api/user/account/get_batch", {"login": batch})
                )
            }
            for user in users:
                account = self._account(user, equity=equity, offset=offset)
                accounts[account.login] = account
        return accounts

    @_parsed(write=False)
    @_session
    def list_logins(self) -> list[int]:
        """Every login in the groups of MT5_WEBAPI_GROUP_MASK, ascending."""
        answer = self.client.call("/api/user/logins", {"group": self.group_mask})
        body = answer.get("answer") or []
        return sorted({parse_int(item) for item in body if parse_int(item)})

    @_parsed(write=False)
    @_session
    def list_groups(self) -> list[str]:
        """The groups the manager sees that match the mask, sorted."""
        total_answer = _answer_object(self.client.call("/api/group/total"))
        total = parse_int(total_answer.get("Total"))
        names: set[str] = set()
        for index in range(0, total, GROUP_PAGE):
            answer = self.client.call(
                "/api/group/next", {"index": index, "count": min(GROUP_PAGE, total - index)}
            )
            for group in _answer_list(answer):
                name = str(group.get("Group") or "")
                if name:
                    names.add(name)
                    if group.get("Currency"):
                        self._currencies[name] = str(group["Currency"])
        return sorted(name for name in names if mask_matches(self.group_mask, name))

    @_parsed(write=False)
    @_session
    def list_countries(self) -> list[str]:
        """The countries of the accounts in the mask's groups, sorted."""
        countries: set[str] = set()
        for batch in _chunks(self.list_logins(), self.batch_size):
            countries.update(str(user.get("Country") or "") for user in self._users(batch))
        countries.discard("")
        return sorted(countries)

    @_parsed(write=False)
    @_session
    def get_deals(
        self, *, cursors: Mapping[int, int], since: datetime | None = None
    ) -> list[MT5Deal]:
        """Each login's deals with ticket > its cursor (and time >= `since`), by ticket."""
        cursors = {int(login): int(ticket) for login, ticket in cursors.items()}
        if not cursors:
            return []
        offset = self._offset()
        now = datetime.now(UTC)
        to_server = server_seconds(now + DEAL_WINDOW_AHEAD, offset_seconds=offset)
        starts = self._window_starts(cursors, since=since, offset=offset)
        # Logins with near starts share a batch, so one old cursor widens only its own batch.
        ordered = sorted(cursors, key=lambda login: (starts[login], login))
        # MT5 times are whole seconds: `since` is compared at that resolution.
        floor = since.replace(microsecond=0) if since is not None else None
        seen: dict[int, MT5Deal] = {}
        for batch in _chunks(ordered, self.batch_size):
            start = max(0, min(starts[login] for login in batch))
            answer = self.client.call(
                "/api/deal/get_batch", {"login": batch, "from": start, "to": to_server}
            )
            for item in _answer_list(answer):
                deal = self._deal(item, offset=offset)
                if deal is not None:
                    seen[deal.ticket] = deal
        deals = [
            deal
            for deal in seen.values()
            if deal.login in cursors
            and deal.ticket > cursors[deal.login]
            and (floor is None or deal.time >= floor)
        ]
        return sorted(deals, key=lambda deal: deal.ticket)

    @_parsed(write=False)
    @_session
    def get_positions(self, logins: Iterable[int]) -> list[MT5Position]:
        """The open positions of `logins`, by ticket."""
        return sorted(
            (self._position(item) for item in self._raw_positions(logins)),
            key=lambda position: position.ticket,
        )

    @_parsed(write=True)
    @_session
    def close_positions(self, login: int, *, comment: str) -> list[int]:
        """Close every open position of `login` by dealer requests; the closing deals' tickets."""
        check_comment(comment)
        login = int(login)
        positions = sorted(
            self._raw_positions([login]), key=lambda item: parse_int(item.get("Position"))
        )
        if not positions:
            self._require_user(login)
            return []
        ids = []
        for position in positions:
            side = parse_int(position.get("Action"))
            request = {
                "Action": str(TA_DEALER_POS_EXECUTE),
                "Login": str(login),
                "Symbol": str(position.get("Symbol") or ""),
                "Position": str(parse_int(position.get("Position"))),
                "Type": "1" if side == 0 else "0",  # the opposite of the position
                "Volume": str(parse_int(position.get("Volume"))),
                "TypeFill": "0",
                "PriceOrder": "0",
                "Digits": str(parse_int(position.get("Digits")) or 5),
                "Comment": comment,
            }
            answer = self.client.call("/api/dealer/send_request", body=request)
            request_id = parse_int(_answer_object(answer).get("ID") or answer.get("ID"))
            if not request_id:
                raise UnknownOutcomeError(
                    "dealer/send_request answered no request ID", gateway=GATEWAY
                )
            ids.append(request_id)
        return self._await_results(ids)

    @_parsed(write=True)
    @_session
    def post_balance(self, login: int, amount: Decimal, *, comment: str) -> int:
        """Deposit or withdraw (trade/balance type 2); a withdrawal checks the free margin."""
        return self._trade_balance(login, amount, comment=comment, kind=DEAL_BALANCE)

    @_parsed(write=True)
    @_session
    def post_credit(self, login: int, amount: Decimal, *, comment: str) -> int:
        """Add or remove credit (trade/balance type 3)."""
        return self._trade_balance(login, amount, comment=comment, kind=DEAL_CREDIT)

    @_parsed(write=True)
    @_session
    def set_leverage(self, login: int, leverage: int) -> None:
        """Set 1:`leverage` (user/update); MT5 allows 1..500."""
        leverage = int(leverage)
        if not 1 <= leverage <= MAX_LEVERAGE:
            raise PermanentGatewayError(
                f"leverage must be 1..{MAX_LEVERAGE}", gateway=GATEWAY, code="invalid_leverage"
            )
        user = self._update(login, {"leverage": leverage}, {"Leverage": str(leverage)})
        # "If a parameter value is incorrect, the parameter does not change": check it did.
        if user and "Leverage" in user and parse_int(user["Leverage"]) != leverage:
            raise PermanentGatewayError(
                f"MT5 kept leverage {user['Leverage']} instead of {leverage}",
                gateway=GATEWAY,
                code="invalid_leverage",
            )

    @_parsed(write=True)
    @_session
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
        """Create an account with user/add; the server picks the login. `currency` is the
        group's on MT5 (it cannot be chosen per account)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise PermanentGatewayError(
                f"password shorter than {MIN_PASSWORD_LENGTH} characters",
                gateway=GATEWAY,
                code="invalid_password",
            )
        if not 1 <= int(leverage) <= MAX_LEVERAGE:
            raise PermanentGatewayError(
                f"leverage must be 1..{MAX_LEVERAGE}", gateway=GATEWAY, code="invalid_leverage"
            )
        body = {
            "Name": name,
            "Group": group,
            "Leverage": str(int(leverage)),
            "Country": country,
            "LeadSource": lead_source,
            "PassMain": password,
            "PassInvestor": _strong_password(),
        }
        answer = self.client.call(
            "/api/user/add", {"group": group, "name": name, "leverage": int(leverage)}, body=body
        )
        user = _answer_object(answer)
        login = parse_int(user.get("Login") or answer.get("login"))
        if not login:
            raise UnknownOutcomeError("user/add answered no login", gateway=GATEWAY)
        user.setdefault("Login", str(login))
        for key, value in (("Name", name), ("Group", group), ("Country", country)):
            user.setdefault(key, value)
        user.setdefault("LeadSource", lead_source)
        user.setdefault("Leverage", str(int(leverage)))
        return self._account(user, equity={}, offset=self._offset())

    @_parsed(write=True)
    @_session
    def change_password(self, login: int, password: str) -> None:
        """Replace the main password (user/change_password, password in the body)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise PermanentGatewayError(
                f"password shorter than {MIN_PASSWORD_LENGTH} characters",
                gateway=GATEWAY,
                code="invalid_password",
            )
        self.client.call(
            "/api/user/change_password",
            body={"Login": str(int(login)), "Type": "main", "Password": password},
        )

    @_parsed(write=True)
    @_session
    def set_enabled(self, login: int, enabled: bool) -> None:
        """Set or clear USER_RIGHT_ENABLED in the account's Rights."""
        user = self._require_user(int(login))
        rights = parse_int(user.get("Rights"))
        rights = rights | USER_RIGHT_ENABLED if enabled else rights & ~USER_RIGHT_ENABLED
        self._update(login, {"rights": rights}, {"Rights": str(rights)})

    @_parsed(write=False)
    @_session
    def find_deal_by_comment(self, login: int, comment: str) -> MT5Deal | None:
        """The latest deal of `login` carrying exactly `comment` in the last FIND_DEAL_WINDOW."""
        offset = self._offset()
        now = datetime.now(UTC)
        params = {
            "login": [int(login)],
            "from": max(0, server_seconds(now - FIND_DEAL_WINDOW, offset_seconds=offset)),
            "to": server_seconds(now + DEAL_WINDOW_AHEAD, offset_seconds=offset),
        }
        try:
            answer = self.client.call("/api/deal/get_batch", params)
        except PermanentGatewayError as exc:
            if exc.code == "account_not_found":
                return None
            raise
        found = [
            deal
            for deal in (self._deal(item, offset=offset) for item in _answer_list(answer))
            if deal is not None and deal.login == int(login) and deal.comment == comment
        ]
        return max(found, key=lambda deal: deal.ticket) if found else None

    # --- Internals ------------------------------------------------------------------------

    def _users(self, logins: list[int]) -> list[dict[str, Any]]:
        if not logins:
            return []
        return _answer_list(self.client.call("/api/user/get_batch", {"login": logins}))

    def _require_user(self, login: int) -> dict[str, Any]:
        user = _answer_object(self.client.call("/api/user/get", {"login": int(login)}))
        if not user:
            raise PermanentGatewayError(
                f"MT5 account {login} not found", gateway=GATEWAY, code="account_not_found"
            )
        return user

    def _update(self, login: int, params: dict[str, Any], body: dict[str, str]) -> dict:
        answer = self.client.call(
            "/api/user/update", {"login": int(login), **params}, body={"Login": str(login), **body}
        )
        return _answer_object(answer)

    def _raw_positions(self, logins: Iterable[int]) -> list[dict[str, Any]]:
        wanted = sorted({int(login) for login in logins})
        items: list[dict[str, Any]] = []
        for batch in _chunks(wanted, self.batch_size):
            items.extend(
                _answer_list(self.client.call("/api/position/get_batch", {"login": batch}))
            )
        return items

    def _trade_balance(self, login: int, amount: Decimal, *, comment: str, kind: int) -> int:
        amount = to_money(amount)
        if not amount:
            raise PermanentGatewayError("amount is zero", gateway=GATEWAY, code="invalid_amount")
        check_comment(comment)
        params = {
            "login": int(login),
            "type": kind,
            "balance": str(amount),
            "comment": comment,
            # Balance withdrawals must leave the margin covered; credit removal must go through
            # (the server still refuses more than the credit given).
            "check_margin": 1 if kind == DEAL_BALANCE and amount < 0 else 0,
        }
        no_money = "insufficient_balance" if kind == DEAL_BALANCE else "insufficient_credit"
        answer = self.client.call("/api/trade/balance", params, no_money=no_money)
        ticket = parse_int(_answer_object(answer).get("Ticket"))
        if not ticket:
            raise UnknownOutcomeError("trade/balance answered no ticket", gateway=GATEWAY)
        return ticket

    def _await_results(self, ids: list[int]) -> list[int]:
        deals: dict[int, int] = {}
        deadline = time.monotonic() + CLOSE_RESULT_WAIT_SECONDS
        pause = 0.01
        while True:
            pending = [request_id for request_id in ids if request_id not in deals]
            answer = self.client.call("/api/dealer/get_request_result", {"id": pending})
            for request_id in pending:
                events = answer.get(str(request_id))
                if events is None and isinstance(answer.get("answer"), dict):
                    events = answer["answer"].get(str(request_id))
                outcome = _final_result(events or [])
                if outcome is None:
                    continue
                retcode, deal = outcome
                if retcode not in RESULT_DONE:
                    raise PermanentGatewayError(
                        f"dealer request {request_id} rejected: retcode {retcode}",
                        gateway=GATEWAY,
                        code="close_rejected",
                    )
                deals[request_id] = deal
            if len(deals) == len(ids):
                return [deals[request_id] for request_id in ids]
            if time.monotonic() >= deadline:
                raise UnknownOutcomeError(
                    f"dealer requests {pending} not final after {CLOSE_RESULT_WAIT_SECONDS:g} s",
                    gateway=GATEWAY,
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _window_starts(
        self, cursors: Mapping[int, int], *, since: datetime | None, offset: int
    ) -> dict[int, int]:
        """Each login's window start in server seconds."""
        overlap = int(DEAL_WINDOW_OVERLAP.total_seconds())
        if since is not None:
            start = server_seconds(since, offset_seconds=offset) - overlap
            return dict.fromkeys(cursors, start)
        unknown = sorted(
            {ticket for ticket in cursors.values() if ticket and ticket not in self._deal_times}
        )
        for batch in _chunks(unknown, self.batch_size):
            answer = self.client.call("/api/deal/get_batch", {"ticket": batch})
            for item in _answer_list(answer):
                self._remember(parse_int(item.get("Deal")), parse_int(item.get("Time")))
        starts = {}
        for login, ticket in cursors.items():
            known = self._deal_times.get(ticket) if ticket else None
            starts[login] = known - overlap if known is not None else 0
        return starts

    def _remember(self, ticket: int, seconds: int) -> None:
        if not ticket:
            return
        if len(self._deal_times) >= _DEAL_TIME_CACHE_MAX:
            self._deal_times.clear()
        self._deal_times[ticket] = seconds

    def _currency(self, group: str) -> str:
        if group and group not in self._currencies:
            try:
                body = _answer_object(self.client.call("/api/group/get", {"group": group}))
            except (PermanentGatewayError, TransientGatewayError):
                return "USD"
            self._currencies[group] = str(body.get("Currency") or "USD")
        return self._currencies.get(group, "USD")

    def _account(
        self, user: Mapping[str, Any], *, equity: Mapping[int, Decimal], offset: int
    ) -> MT5Account:
        login = parse_int(user.get("Login"))
        balance, credit = parse_money(user.get("Balance")), parse_money(user.get("Credit"))
        group = str(user.get("Group") or "")
        return MT5Account(
            login=login,
            name=str(user.get("Name") or ""),
            group=group,
            country=str(user.get("Country") or ""),
            lead_source=str(user.get("LeadSource") or ""),
            balance=balance,
            credit=credit,
            equity=equity.get(login, balance + credit),
            leverage=parse_int(user.get("Leverage")),
            currency=self._currency(group),
            enabled=bool(parse_int(user.get("Rights", USER_RIGHT_ENABLED)) & USER_RIGHT_ENABLED),
            registered_at=parse_server_time(user.get("Registration"), offset_seconds=offset),
        )

    def _deal(self, item: Mapping[str, Any], *, offset: int) -> MT5Deal | None:
        action = _ACTIONS.get(parse_int(item.get("Action")))
        if action is None:
            return None  # bonus, agent, dividend, tax...: not a kind the product models
        ticket = parse_int(item.get("Deal"))
        seconds = parse_int(item.get("Time"))
        self._remember(ticket, seconds)
        trade = action in (DealAction.BUY, DealAction.SELL)
        return MT5Deal(
            ticket=ticket,
            login=parse_int(item.get("Login")),
            time=_deal_time(seconds, item.get("TimeMsc"), offset=offset),
            action=action,
            entry=_ENTRIES.get(parse_int(item.get("Entry")), DealEntry.IN)
            if trade
            else DealEntry.NONE,
            symbol=str(item.get("Symbol") or ""),
            volume=parse_decimal(item.get("Volume")) / VOLUME_UNITS,
            price=parse_decimal(item.get("Price")),
            profit=parse_money(item.get("Profit")),
            comment=str(item.get("Comment") or ""),
            position_id=parse_int(item.get("PositionID")),
        )

    def _position(self, item: Mapping[str, Any]) -> MT5Position:
        return MT5Position(
            ticket=parse_int(item.get("Position")),
            login=parse_int(item.get("Login")),
            symbol=str(item.get("Symbol") or ""),
            side=PositionSide.SELL if parse_int(item.get("Action")) == 1 else PositionSide.BUY,
            volume=parse_decimal(item.get("Volume")) / VOLUME_UNITS,
            open_price=parse_decimal(item.get("PriceOpen")),
            profit=parse_money(item.get("Profit")),
        )


def _state(item: Mapping[str, Any]) -> tuple[int, AccountState | None]:
    """One Account as the monitor's four numbers; (login, None) without a usable leverage.

    The per-second sweep parses 100,000 of these: the plain path first, the careful parsers
    only for an odd value."""
    try:
        login, leverage = int(item["Login"]), int(item["MarginLeverage"])
        balance = Decimal(item["Balance"]).quantize(CENT)
        credit = Decimal(item["Credit"]).quantize(CENT)
        equity = Decimal(item["Equity"]).quantize(CENT)
        if not (balance.is_finite() and credit.is_finite() and equity.is_finite()):
            raise ValueError("not a finite number")
    except (KeyError, TypeError, ValueError, ArithmeticError):
        login, leverage = parse_int(item.get("Login")), parse_int(item.get("MarginLeverage"))
        if not (login and leverage):
            return login, None
        balance = parse_money(item.get("Balance"))
        credit = parse_money(item.get("Credit"))
        equity = parse_money(item.get("Equity"))
    if not leverage:
        return login, None
    return login, AccountState(balance, credit, equity, leverage)


def _deal_time(seconds: int, msc: Any, *, offset: int) -> datetime:
    """A deal's UTC time to the millisecond (`TimeMsc`) when the server gives it: `Time` is
    whole seconds, and the monitor tells a deal made just after it began watching an account
    from the history before by comparing times finer than that."""
    milliseconds = parse_int(msc)
    if milliseconds // 1000 != seconds:
        return parse_server_time(seconds, offset_seconds=offset)
    moment = parse_server_time(seconds, offset_seconds=offset)
    return moment.replace(microsecond=milliseconds % 1000 * 1000)


def _final_result(events: list[Any]) -> tuple[int, int] | None:
    """(retcode, deal ticket) once a request's events hold a final answer; either shape."""
    retcode, deal = None, 0
    for event in events:
        if not isinstance(event, dict):
            continue
        answer = event.get("answer")
        if isinstance(answer, dict) and answer.get("ResultRetcode"):
            retcode = parse_int(str(answer["ResultRetcode"]).split(" ", 1)[0])
            deal = parse_int(answer.get("ResultDeal")) or deal
        result = event.get("result")
        if isinstance(result, dict) and result.get("Retcode") and retcode is None:
            retcode = parse_int(str(result["Retcode"]).split(" ", 1)[0])
            deal = parse_int(result.get("DealID")) or deal
    if retcode is None or retcode == 0:
        return None
    return retcode, deal
