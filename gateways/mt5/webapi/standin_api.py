"""The Web API stand-in's endpoints (spec section 4), on the simulated MT5 server's state.

Each endpoint takes a `Call` and returns the answer's top-level fields besides `retcode`
(usually `{"answer": ...}`), or raises `RetcodeError`. Money moves the way the simulated
server moves it: under the account's row lock, with the deal in the same transaction.
"""

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from gateways.errors import PermanentGatewayError
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal, SimulatedMT5Position
from gateways.mt5.simulated import SimulatedMT5Gateway, next_login
from gateways.mt5.types import DealAction

from .standin_wire import (
    CURRENCY_DIGITS,
    RawRows,
    RetcodeError,
    Rows,
    account_json,
    account_json_text,
    as_decimal,
    as_int,
    as_list,
    as_logins,
    deal_json,
    from_server_seconds,
    group_json,
    mask_matcher,
    position_json,
    server_time_text,
    user_json,
)

MAX_AMOUNT = Decimal(1_000_000_000)
COMMENT_USABLE = 31  # 32 characters including the terminator
MAX_PAGE = 100
MAX_LEVERAGE = 500
MAX_NAME = 127
PASSWORD_LENGTH = (8, 16)
# trade/balance `type` -> the deal it books and the field it moves. The simulated history has
# no bonus action: a bonus (6) moves the balance and is recorded as a correction.
BALANCE_TYPES = {
    2: (DealAction.BALANCE, "balance"),
    3: (DealAction.CREDIT, "credit"),
    4: (DealAction.CHARGE, "balance"),
    5: (DealAction.CORRECTION, "balance"),
    6: (DealAction.CORRECTION, "balance"),
}
USER_COMMENT_USABLE = SimulatedMT5Account.COMMENT_MAX  # cut, like a deal's [INF]
_SIMS: dict[str, SimulatedMT5Gateway] = {
    server: SimulatedMT5Gateway(server=server) for server in SimulatedMT5Account.Server
}


@dataclass
class Call:
    """One request: its query (unescaped, one value per name), its JSON body, the server's
    time offset, the stand-in (groups, dealer) and the connection's session."""

    query: dict[str, str]
    body: Any
    offset: int
    standin: Any
    session: Any = None
    extra: dict = field(default_factory=dict)

    @property
    def server(self) -> str:
        """Which simulated server this stand-in serves: "live" or "demo"."""
        return self.standin.server

    def get(self, name: str, body_name: str | None = None) -> Any:
        """Body fields override query fields; the body spells them as the User JSON does."""
        if isinstance(self.body, dict):
            for key in (body_name, name, name.capitalize()):
                if key and key in self.body:
                    return self.body[key]
        return self.query.get(name)

    def required(self, name: str, body_name: str | None = None) -> Any:
        value = self.get(name, body_name)
        if value is None or str(value).strip() == "":
            raise RetcodeError(3, f"{name} is required")
        return value


def _one_list(call: Call, *names: str) -> tuple[str, Any]:
    """The "one list only" rule: exactly one of `names` (query or body array) is given."""
    given = [(name, call.get(name)) for name in names]
    given = [(name, value) for name, value in given if as_list(value)]
    if len(given) != 1:
        raise RetcodeError(3, f"exactly one of {', '.join(names)} is required")
    return given[0]


def _window(call: Call):
    start = as_int(call.required("from"), name="from")
    end = as_int(call.required("to"), name="to")
    return from_server_seconds(start, call.offset), from_server_seconds(end, call.offset)


def _accounts(call: Call):
    """This server's accounts only: the live and the demo server never see each other's."""
    return SimulatedMT5Account.objects.filter(server=call.server)


def _mine(call: Call, rows, column: str = "account_id") -> list:
    """Rows (deals, positions) of this server's accounts: one query, and only when some rows
    came back, so a quiet sweep pays nothing for the scoping."""
    rows = list(rows)
    logins = {getattr(row, column) for row in rows}
    if not logins:
        return rows
    where, wanted = _login_filter(sorted(logins))
    mine = {
        login
        for login in _accounts(call).filter(**where).values_list("login", flat=True)
        if wanted is None or login in wanted
    }
    return [row for row in rows if getattr(row, column) in mine]


def _account_or_13(call: Call, login: int) -> SimulatedMT5Account:
    row = _accounts(call).filter(pk=login).first()
    if row is None:
        raise RetcodeError(13, f"account {login} not found")
    return row


def known_groups(standin) -> list[str]:
    """Groups the server has: the configured ones and every group an account is in."""
    groups = set(standin.groups)
    accounts = SimulatedMT5Account.objects.filter(server=standin.server)
    groups.update(accounts.values_list("group", flat=True).distinct())
    return sorted(groups, key=str.lower)


def _group_exists(standin, name: str) -> bool:
    return name.lower() in {group.lower() for group in known_groups(standin)}


def _login_filter(logins: list[int], column: str = "login") -> tuple[dict, set[int] | None]:
    """A filter for a login list, and the set the rows must then be cut to (or None).

    A batch is usually neighbouring logins: a range costs far less to send and plan than a
    1,000-value IN list (Django alone spends ~0.2 s compiling one), strangers are dropped in
    Python. A sparse list still gets its IN.
    """
    wanted = set(logins)
    if not wanted:
        return {f"{column}__in": []}, None
    low, high = min(wanted), max(wanted)
    if high - low < 4 * len(wanted) + 64:
        return {f"{column}__gte": low, f"{column}__lte": high}, wanted
    return {f"{column}__in": sorted(wanted)}, None


def _keep(rows, wanted: set[int] | None, column: str = "login"):
    if wanted is None:
        return list(rows)
    return [row for row in rows if getattr(row, column) in wanted]


def _logins_of(call: Call, kind: str, value: Any):
    if kind == "login":
        where, _ = _login_filter(as_logins(value))
        return _accounts(call).filter(**where)
    matches = mask_matcher(as_list(value))
    groups = [group for group in known_groups(call.standin) if matches(group)]
    return _accounts(call).filter(group__in=groups)


# --- Session and server ------------------------------------------------------------------------


def test_access(call: Call) -> dict:
    return {}


def time_server(call: Call) -> dict:
    now = int(timezone.now().timestamp()) + call.offset
    return {"answer": {"Time": server_time_text(now)}}


# --- Users ---------------------------------------------------------------------------------------


def user_get(call: Call) -> dict:
    row = _account_or_13(call, as_int(call.required("login"), name="login"))
    return {"answer": user_json(row, offset=call.offset)}


def user_get_batch(call: Call) -> dict:
    kind, value = _one_list(call, "login", "group")
    wanted = set(as_logins(value)) if kind == "login" else None
    rows = _keep(_logins_of(call, kind, value).order_by("login"), wanted)
    return {"answer": Rows(user_json(row, offset=call.offset) for row in rows)}


def user_logins(call: Call) -> dict:
    rows = _logins_of(call, "group", call.required("group")).order_by("login")
    return {"answer": [str(login) for login in rows.values_list("login", flat=True)]}


def user_total(call: Call) -> dict:
    return {"answer": {"Total": str(_accounts(call).count())}}


def user_group(call: Call) -> dict:
    row = _account_or_13(call, as_int(call.required("login"), name="login"))
    return {"answer": {"Group": row.group}}


def _states(accounts, wanted: set[int] | None = None, *, build=account_json) -> list:
    rows = accounts.order_by("login").values_list("login", "balance", "credit", "leverage")
    rows = [row for row in rows if wanted is None or row[0] in wanted]
    if not rows:
        return []
    where, _ = _login_filter([row[0] for row in rows], "account_id")
    floating = dict(
        SimulatedMT5Position.objects.filter(**where)
        .values("account_id")
        .annotate(total=Sum("profit"))
        .values_list("account_id", "total")
        .order_by()
    )
    zero = Decimal(0)
    rows_type = RawRows if build is account_json_text else Rows
    return rows_type(
        build(login, balance, credit, floating.get(login, zero), leverage)
        for login, balance, credit, leverage in rows
    )


def account_get(call: Call) -> dict:
    login = as_int(call.required("login"), name="login")
    states = _states(_accounts(call).filter(pk=login))
    if not states:
        raise RetcodeError(13, f"account {login} not found")
    return {"answer": states[0]}


def account_get_batch(call: Call) -> dict:
    kind, value = _one_list(call, "login", "group")
    wanted = set(as_logins(value)) if kind == "login" else None
    return {"answer": _states(_logins_of(call, kind, value), wanted, build=account_json_text)}


def _strong_password(password: str) -> bool:
    low, high = PASSWORD_LENGTH
    return (
        low <= len(password) <= high
        and re.search(r"[a-z]", password) is not None
        and re.search(r"[A-Z]", password) is not None
        and re.search(r"\d", password) is not None
        and re.search(r"[^a-zA-Z\d]", password) is not None
    )


def _fair_password(password: str) -> bool:
    kinds = [r"[a-zA-Z]", r"\d", r"[^a-zA-Z\d]"]
    return (
        len(password) >= PASSWORD_LENGTH[0]
        and sum(re.search(kind, password) is not None for kind in kinds) >= 2
    )


def _leverage(value: Any) -> int:
    leverage = as_int(value, name="leverage")
    if not 1 <= leverage <= MAX_LEVERAGE:
        raise RetcodeError(3, "leverage must be 1..500")
    return leverage


def user_add(call: Call) -> dict:
    group = str(call.required("group", "Group"))
    name = str(call.required("name", "Name"))
    if len(name) > MAX_NAME:
        raise RetcodeError(3, "name longer than 127 characters")
    leverage = _leverage(call.required("leverage", "Leverage"))
    main = str(call.get("pass_main", "PassMain") or "")
    investor = str(call.get("pass_investor", "PassInvestor") or "")
    if not _strong_password(main) or not _strong_password(investor):
        raise RetcodeError(3006, "passwords need lower and upper case, a digit, a sign, 8-16")
    if not _group_exists(call.standin, group):
        raise RetcodeError(8, f"group {group} does not exist")
    limit = getattr(call.standin, "max_accounts", None)
    if limit is not None and _accounts(call).count() >= limit:
        raise RetcodeError(3002, "logins range exhausted")
    login = as_int(call.get("login", "Login") or 0, name="login")
    fields = {
        "server": call.server,
        "comment": str(call.get("comment", "Comment") or "")[:USER_COMMENT_USABLE],
        "name": name,
        "group": group,
        "country": str(call.get("country", "Country") or ""),
        "lead_source": str(call.get("lead_source", "LeadSource") or ""),
        "leverage": leverage,
        "password": make_password(main),
        "registered_at": timezone.now(),
    }
    if login:
        try:
            with transaction.atomic():
                SimulatedMT5Account.objects.create(login=login, **fields)
        except IntegrityError:
            raise RetcodeError(3004, f"account {login} already exists") from None
    else:
        try:
            login = next_login(
                call.server,
                lambda candidate: SimulatedMT5Account.objects.create(login=candidate, **fields),
            )
        except PermanentGatewayError:
            raise RetcodeError(3002, "no free login") from None
    row = SimulatedMT5Account.objects.get(pk=login)
    return {"login": str(login), "answer": user_json(row, offset=call.offset)}


def user_update(call: Call) -> dict:
    """Only what is passed changes; an incorrect value leaves its field unchanged."""
    login = as_int(call.required("login", "Login"), name="login")
    row = _account_or_13(call, login)
    changes: dict[str, Any] = {}
    leverage = call.get("leverage", "Leverage")
    if leverage is not None:
        with contextlib.suppress(RetcodeError):
            changes["leverage"] = _leverage(leverage)
    group = call.get("group", "Group")
    if group and _group_exists(call.standin, str(group)):
        changes["group"] = str(group)
    for param, body_name, column in (
        ("name", "Name", "name"),
        ("country", "Country", "country"),
        ("lead_source", "LeadSource", "lead_source"),
    ):
        value = call.get(param, body_name)
        if value is not None and len(str(value)) <= MAX_NAME:
            changes[column] = str(value)
    rights = call.get("rights", "Rights")
    if rights is not None:
        with contextlib.suppress(RetcodeError):
            changes["enabled"] = bool(as_int(rights) & 1)
    if changes:
        _accounts(call).filter(pk=login).update(**changes)
        row.refresh_from_db()
    return {"answer": user_json(row, offset=call.offset)}


def _password_call(call: Call) -> tuple[int, str, str]:
    login = as_int(call.required("login", "Login"), name="login")
    kind = str(call.get("type", "Type") or "main").lower()
    if kind not in ("main", "investor", "api"):
        raise RetcodeError(3, "type is main, investor or api")
    password = str(call.required("password", "Password"))
    _account_or_13(call, login)
    return login, kind, password


def user_change_password(call: Call) -> dict:
    login, kind, password = _password_call(call)
    if not _fair_password(password):
        raise RetcodeError(3006, "password too weak")
    if kind == "main":  # the simulated server keeps only the main password
        _accounts(call).filter(pk=login).update(password=make_password(password))
    return {}


def user_check_password(call: Call) -> dict:
    login, kind, password = _password_call(call)
    stored = _accounts(call).filter(pk=login).values_list("password", flat=True)
    if kind != "main" or not check_password(password, stored.first() or ""):
        raise RetcodeError(3006, "password does not match")
    return {}


def user_delete(call: Call) -> dict:
    login = as_int(call.required("login", "Login"), name="login")
    if not _accounts(call).filter(pk=login).delete()[0]:
        raise RetcodeError(13, f"account {login} not found")
    return {}


# --- Money ---------------------------------------------------------------------------------------


def trade_balance(call: Call) -> dict:
    kind = as_int(call.required("type"), name="type")
    if kind not in BALANCE_TYPES:
        raise RetcodeError(3, "type must be 2..6")
    amount = as_decimal(call.required("balance"), name="balance").quantize(Decimal("0.01"))
    if not amount:
        raise RetcodeError(3, "balance is zero")
    if abs(amount) > MAX_AMOUNT:
        raise RetcodeError(4005, "more than 1,000,000,000")
    login = as_int(call.required("login"), name="login")
    comment = str(call.get("comment") or "")[:COMMENT_USABLE]
    check_margin = str(call.get("check_margin") or "1").strip() != "0"
    action, column = BALANCE_TYPES[kind]
    with transaction.atomic():
        locked = _accounts(call).select_for_update().filter(pk=login)
        row = locked.values("balance", "credit").first()
        if row is None:
            raise RetcodeError(13, f"account {login} not found")
        if amount < 0:
            _check_withdrawal(login, row, column, -amount, check_margin=check_margin)
        SimulatedMT5Account.objects.filter(pk=login).update(**{column: F(column) + amount})
        deal = SimulatedMT5Deal.objects.create(
            account_id=login, action=action, profit=amount, comment=comment
        )
    return {"answer": {"Ticket": str(deal.ticket)}}


def _check_withdrawal(login: int, row: dict, column: str, amount: Decimal, *, check_margin):
    if column == "credit":
        if amount > row["credit"]:
            raise RetcodeError(10019, "more than the credit")
        return
    if amount > row["balance"]:
        raise RetcodeError(10019, "more than the balance")
    if check_margin:
        floating = SimulatedMT5Position.objects.filter(account_id=login).aggregate(
            total=Sum("profit")
        )["total"] or Decimal(0)
        if amount > row["balance"] + row["credit"] + floating:  # free margin; no margin kept
            raise RetcodeError(10019, "more than the free margin")


# --- Deals ---------------------------------------------------------------------------------------


def _deals_json(call: Call, rows, wanted: set[int] | None = None, scoped=None) -> list[dict]:
    symbols = as_list(call.get("symbol"))
    if symbols:
        rows = rows.filter(symbol__in=symbols)
    rows = _keep(rows.order_by("ticket"), wanted, "account_id")
    if scoped is None:
        rows = _mine(call, rows)
    return Rows(deal_json(row, offset=call.offset) for row in rows)


def deal_get(call: Call) -> dict:
    ticket = as_int(call.required("ticket"), name="ticket")
    row = SimulatedMT5Deal.objects.filter(pk=ticket, account__server=call.server).first()
    if row is None:
        raise RetcodeError(13, f"deal {ticket} not found")
    return {"answer": deal_json(row, offset=call.offset)}


def _deals_of_login(call: Call):
    login = as_int(call.required("login"), name="login")
    start, end = _window(call)
    _account_or_13(call, login)
    return SimulatedMT5Deal.objects.filter(account_id=login, time__gte=start, time__lte=end)


def deal_get_total(call: Call) -> dict:
    return {"answer": {"Total": str(_deals_of_login(call).count())}}


def _page(call: Call) -> tuple[int, int]:
    offset = as_int(call.get("offset") or 0, name="offset")
    total = as_int(call.get("total") or MAX_PAGE, name="total")
    if offset < 0 or total < 0:
        raise RetcodeError(3, "offset and total are >= 0")
    return offset, min(total, MAX_PAGE)


def deal_get_page(call: Call) -> dict:
    offset, total = _page(call)
    rows = _deals_of_login(call).order_by("ticket")[offset : offset + total]
    return {"answer": [deal_json(row, offset=call.offset) for row in rows]}


def deal_get_batch(call: Call) -> dict:
    kind, value = _one_list(call, "login", "group", "ticket")
    if kind == "ticket":
        tickets = [as_int(item, name="ticket") for item in as_list(value)]
        return {"answer": _deals_json(call, SimulatedMT5Deal.objects.filter(pk__in=tickets))}
    start, end = _window(call)
    rows = SimulatedMT5Deal.objects.filter(time__gte=start, time__lte=end)
    if kind == "login":
        where, wanted = _login_filter(as_logins(value), "account_id")
        rows = rows.filter(**where)
    else:
        rows, wanted = (
            rows.filter(account_id__in=_logins_of(call, kind, value).values("login")),
            None,
        )
        return {"answer": _deals_json(call, rows, wanted, scoped=True)}
    return {"answer": _deals_json(call, rows, wanted)}


# --- Positions -----------------------------------------------------------------------------------


def _positions_json(call: Call, rows, wanted: set[int] | None = None) -> list[dict]:
    rows = _mine(call, _keep(rows.order_by("ticket"), wanted, "account_id"))
    return Rows(position_json(row, offset=call.offset) for row in rows)


def position_get(call: Call) -> dict:
    login = as_int(call.required("login"), name="login")
    symbol = str(call.required("symbol"))
    _account_or_13(call, login)
    row = SimulatedMT5Position.objects.filter(account_id=login, symbol=symbol).first()
    if row is None:
        raise RetcodeError(13, "no such position")
    return {"answer": position_json(row, offset=call.offset)}


def position_get_total(call: Call) -> dict:
    login = as_int(call.required("login"), name="login")
    _account_or_13(call, login)
    total = SimulatedMT5Position.objects.filter(account_id=login).count()
    return {"answer": {"Total": str(total)}}


def position_get_page(call: Call) -> dict:
    login = as_int(call.required("login"), name="login")
    offset, total = _page(call)
    _account_or_13(call, login)
    rows = SimulatedMT5Position.objects.filter(account_id=login).order_by("ticket")
    return {"answer": [position_json(r, offset=call.offset) for r in rows[offset : offset + total]]}


def position_get_batch(call: Call) -> dict:
    kind, value = _one_list(call, "login", "group", "ticket")
    if kind == "ticket":
        tickets = [as_int(item, name="ticket") for item in as_list(value)]
        rows = SimulatedMT5Position.objects.filter(pk__in=tickets)
    wanted = None
    if kind == "login":
        where, wanted = _login_filter(as_logins(value), "account_id")
        rows = SimulatedMT5Position.objects.filter(**where)
    elif kind == "group":
        rows = SimulatedMT5Position.objects.filter(
            account_id__in=_logins_of(call, kind, value).values("login")
        )
    symbols = as_list(call.get("symbol"))
    if symbols:
        rows = rows.filter(symbol__in=symbols)
    return {"answer": _positions_json(call, rows, wanted)}


def position_delete(call: Call) -> dict:
    """Removes positions without a closing deal: not a close (spec section 4)."""
    tickets = [as_int(item, name="ticket") for item in as_list(call.required("ticket"))]
    mine = SimulatedMT5Position.objects.filter(pk__in=tickets, account__server=call.server)
    if not mine.delete()[0]:
        raise RetcodeError(13, "no such position")
    return {}


# --- Groups --------------------------------------------------------------------------------------


def group_get(call: Call) -> dict:
    server = call.standin.server_name
    mask = call.get("mask")
    if mask:
        matches = mask_matcher(as_list(mask))
        found = [g for g in known_groups(call.standin) if matches(g)]
        return {"answer": [group_json(g, server=server) for g in found]}
    name = str(call.required("group"))
    for group in known_groups(call.standin):
        if group.lower() == name.lower():
            return {"answer": group_json(group, server=server)}
    raise RetcodeError(13, f"group {name} not found")


def group_total(call: Call) -> dict:
    return {"answer": {"Total": str(len(known_groups(call.standin)))}}


def group_next(call: Call) -> dict:
    index = as_int(call.get("index") or 0, name="index")
    count = as_int(call.get("count") or 1, name="count")
    groups = known_groups(call.standin)
    if index < 0 or index >= len(groups):
        raise RetcodeError(13, "no group at this index")
    server = call.standin.server_name
    chosen = [group_json(g, server=server) for g in groups[index : index + max(count, 1)]]
    return {"answer": chosen[0] if count <= 1 else chosen}


# --- Dealer: executed later by the stand-in's dealer thread -------------------------------------

DEALER_POSITION_EXECUTE = 200


def execute_dealer_request(request: dict, server: str = "live") -> tuple[int, int]:
    """Carry out one dealer request; return (ResultRetcode, ResultDeal).

    With `Position`, it closes that position at its floating profit (an OUT deal with the
    profit, the position removed); without, it opens one (Type 0 buy, 1 sell).
    """
    try:
        login = as_int(request.get("Login"), name="Login")
        position = as_int(request.get("Position") or 0, name="Position")
        comment = str(request.get("Comment") or "")[:COMMENT_USABLE]
        if position:
            return _close(login, position, comment, server=server)
        kind = as_int(request.get("Type"), name="Type")
        volume = Decimal(as_int(request.get("Volume"), name="Volume")) / 10000
        if kind not in (0, 1) or volume <= 0 or not request.get("Symbol"):
            return 10006, 0
        ticket = _SIMS[server].open_position(
            login,
            symbol=str(request["Symbol"]),
            side="buy" if kind == 0 else "sell",
            volume=volume,
            price=as_decimal(request.get("PriceOrder") or "1", name="PriceOrder"),
        )
        deal = SimulatedMT5Deal.objects.filter(position_id=ticket).order_by("ticket").first()
        return 10009, deal.ticket if deal else 0
    except RetcodeError:
        return 10006, 0
    except Exception:  # an unknown login (a missing row) and the like: rejected, not crashed
        return 10006, 0


def _close(login: int, ticket: int, comment: str, *, server: str) -> tuple[int, int]:
    with transaction.atomic():
        accounts = SimulatedMT5Account.objects.filter(server=server)
        if not accounts.select_for_update().filter(pk=login).exists():
            return 10006, 0
        position = SimulatedMT5Position.objects.filter(pk=ticket, account_id=login).first()
        if position is None:
            return 10006, 0
        return 10009, _SIMS[server]._book_close(position, profit=position.profit, comment=comment)


def dealer_check(request: Any) -> dict:
    """What send_request refuses at once (retcode 3): not an object, not a dealer action."""
    if not isinstance(request, dict):
        raise RetcodeError(3, "the body is the trade request JSON")
    action = as_int(request.get("Action"), name="Action")
    if action != DEALER_POSITION_EXECUTE:
        raise RetcodeError(3, "only Action 200 (TA_DEALER_POS_EXECUTE) is served")
    as_int(request.get("Login"), name="Login")
    return request


ENDPOINTS: dict[str, Callable[[Call], dict]] = {
    "/api/test/access": test_access,
    "/api/time/server": time_server,
    "/api/user/get": user_get,
    "/api/user/get_batch": user_get_batch,
    "/api/user/logins": user_logins,
    "/api/user/total": user_total,
    "/api/user/group": user_group,
    "/api/user/account/get": account_get,
    "/api/user/account/get_batch": account_get_batch,
    "/api/user/add": user_add,
    "/api/user/update": user_update,
    "/api/user/change_password": user_change_password,
    "/api/user/check_password": user_check_password,
    "/api/user/delete": user_delete,
    "/api/trade/balance": trade_balance,
    "/api/deal/get": deal_get,
    "/api/deal/get_total": deal_get_total,
    "/api/deal/get_page": deal_get_page,
    "/api/deal/get_batch": deal_get_batch,
    "/api/position/get": position_get,
    "/api/position/get_total": position_get_total,
    "/api/position/get_page": position_get_page,
    "/api/position/get_batch": position_get_batch,
    "/api/position/delete": position_delete,
    "/api/group/get": group_get,
    "/api/group/total": group_total,
    "/api/group/next": group_next,
}
POST_ONLY = {"/api/user/add", "/api/user/update", "/api/dealer/send_request"}
__all__ = ["CURRENCY_DIGITS", "ENDPOINTS", "POST_ONLY", "Call", "execute_dealer_request"]
