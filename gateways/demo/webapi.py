"""`DemoGateway` on the broker's MT5 demo server, over MetaQuotes' Manager Web API.

Selected by `DEMO_GATEWAY=gateways.demo.webapi.WebApiDemoGateway`; its own connection and
manager (`MT5_DEMO_URL`, `MT5_DEMO_MANAGER_LOGIN`/`_PASSWORD`, `MT5_DEMO_CA_BUNDLE` or
`MT5_DEMO_CERT_SHA256`, `MT5_DEMO_TIME_OFFSET_SECONDS`, `DEMO_REQUEST_TIMEOUT_SECONDS`), the
session and parsing of `gateways.mt5.webapi`. Accounts go into `MT5_DEMO_GROUP`.

    create_demo_account   user/add in the demo group (name, leverage, passwords, the marker in
                          Comment), then the initial balance by trade/balance type 2 with the
                          marker as the deal's comment
    check_account         user/get_batch + user/account/get_batch (exists=False if unknown)
    change_password       user/change_password (main)
    disable_account       user/update Rights with USER_RIGHT_ENABLED cleared
    ping                  test/access

`user/add` takes no idempotency key, so each creation is marked: `marker(idempotency_id)` (at
most 31 characters, what MT5 keeps of a comment) is the account's Comment and its initial
deposit's comment. A `WebApiDemoCreation` row is written before the first `user/add` of an
id; when a later call finds the row without a login (the earlier outcome is unknown: a lost
answer, a crash), it looks the account up by its marker (user/logins + user/get_batch over the
demo group, newest first) before sending any `user/add`, and the deposit by its comment
(deal/get_batch of the login) before posting one; while the last user/add of the id may still
be made by a slow server (2 x `DEMO_REQUEST_TIMEOUT_SECONDS` after it was sent, counted from
when the client gave up on its answer: it may have waited for the session first) a retry that
does not find the account fails transiently instead of adding one. So a retry never makes a
second account nor a second deposit, and the same idempotency id again returns the same
account.

The initial password is derived from SECRET_KEY and the idempotency id (MT5 never hands a
password back): a replay answers with the password the account was created with.
"""

import hashlib
import hmac
import re
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from gateways.errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError
from gateways.models import WebApiDemoCreation
from gateways.mt5.types import CENT
from gateways.mt5.webapi.client import WebApiClient, parse_int, parse_money, parse_server_time
from gateways.mt5.webapi.gateway import MAX_LEVERAGE, WebApiMT5Gateway

from .types import DemoAccount, DemoAccountStatus

GATEWAY = "demo"
USER_RIGHT_ENABLED = 1
MARKER_PREFIX = "bd:"
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,28}")
MAX_NAME = 127
# The client's error codes in the DemoGateway's words.
_CODES = {
    "login_unavailable": "limit_reached",  # 3002 logins range exhausted, 3003, 3004
    "invalid_password": "bad_request",
    "invalid_parameters": "bad_request",
    "invalid_leverage": "bad_request",
    "invalid_amount": "bad_request",
}


def marker(idempotency_id: str) -> str:
    """The tag of one creation in the account's Comment and its deposit's comment: the id
    itself when it is short and plain (the pool's are, 22 characters), else a digest."""
    if _PLAIN_ID.fullmatch(idempotency_id):
        return MARKER_PREFIX + idempotency_id
    return "bd#" + hashlib.sha256(idempotency_id.encode()).hexdigest()[:28]


def initial_passwords(idempotency_id: str) -> tuple[str, str]:
    """(main, investor): 14 characters each, upper and lower case, digits and a sign, as
    MT5's user/add asks; the same id always gives the same two."""

    def derive(purpose: str) -> str:
        digest = hmac.new(
            settings.SECRET_KEY.encode(),
            f"mt5-demo-{purpose}:{idempotency_id}".encode(),
            hashlib.sha256,
        ).hexdigest()
        return f"Dm#{digest[:10]}7"

    return derive("main"), derive("investor")


def _add_settles() -> timedelta:
    """How long after a user/add that got no answer its account may still appear: twice the
    time the client waits for an answer."""
    return timedelta(seconds=2 * float(settings.DEMO_REQUEST_TIMEOUT_SECONDS))


def _translated(exc: PermanentGatewayError) -> PermanentGatewayError:
    code = _CODES.get(exc.code, exc.code)
    if code == exc.code and exc.gateway == GATEWAY:
        return exc
    return PermanentGatewayError(str(exc), gateway=GATEWAY, code=code, status=exc.status)


class WebApiDemoGateway:
    """Demo accounts on the demo server: one Web API session per instance (process)."""

    def __init__(
        self,
        *,
        url: str | None = None,
        login: int | str | None = None,
        password: str | None = None,
        group: str | None = None,
        client: WebApiClient | None = None,
    ) -> None:
        self._options: dict[str, Any] = {"url": url, "login": login, "password": password}
        self._group = group
        self._client = client
        self._lock = threading.Lock()
        self._mt5: WebApiMT5Gateway | None = None
        self._currencies: dict[str, str] = {}

    # --- Configuration --------------------------------------------------------------------

    @property
    def mt5(self) -> WebApiMT5Gateway:
        """The Web API gateway on the demo server's session, built from settings on first use."""
        if self._mt5 is None:
            with self._lock:
                if self._mt5 is None:
                    client = self._client or self._build_client()
                    self._mt5 = WebApiMT5Gateway(client=client)
        return self._mt5

    def _build_client(self) -> WebApiClient:
        url = self._options["url"] or settings.MT5_DEMO_URL
        if not url:
            raise PermanentGatewayError(
                "MT5_DEMO_URL is not set", gateway=GATEWAY, code="not_configured"
            )
        try:
            login = int(self._options["login"] or settings.MT5_DEMO_MANAGER_LOGIN)
        except (TypeError, ValueError):
            raise PermanentGatewayError(
                "MT5_DEMO_MANAGER_LOGIN is not set", gateway=GATEWAY, code="not_configured"
            ) from None
        password = self._options["password"]
        return WebApiClient(
            url=url,
            login=login,
            password=settings.MT5_DEMO_MANAGER_PASSWORD if password is None else password,
            timeout=settings.DEMO_REQUEST_TIMEOUT_SECONDS,
            ca_bundle=settings.MT5_DEMO_CA_BUNDLE,
            cert_sha256=settings.MT5_DEMO_CERT_SHA256,
            time_offset_seconds=settings.MT5_DEMO_TIME_OFFSET_SECONDS,
        )

    def group_for(self, requested: str) -> str:
        """The demo group accounts go into: MT5_DEMO_GROUP (the manager's rights are granted
        on it), or the caller's group when that setting is blank."""
        return self._group or settings.MT5_DEMO_GROUP or requested

    def _call(self, path: str, params: dict | None = None, *, body: Any = None) -> dict:
        try:
            return self.mt5.client.call(path, params, body=body)
        except PermanentGatewayError as exc:
            raise _translated(exc) from None

    # --- The Protocol ---------------------------------------------------------------------

    def ping(self) -> None:
        """Return if the demo server's session answers."""
        self._call("/api/test/access")

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
        """Create a demo account with its initial balance, or get back the one this
        idempotency id already created (see the module docstring)."""
        group = self.group_for(group)
        _validate(idempotency_id, name, balance, leverage, currency, group)
        tag = marker(idempotency_id)
        try:
            self._check_currency(group, currency)
            user, deposit = self._earlier_account(idempotency_id, tag, group)
            fresh = user is None
            if user is None:
                user = self._add_user(
                    idempotency_id, tag, name=name, leverage=leverage, group=group
                )
            login = parse_int(user.get("Login"))
            if deposit is None:
                deposit = self._initial_deposit(login, balance, tag, look_first=not fresh)
                self._remember(idempotency_id, deposit=deposit)
            offset = self.mt5.client.session_offset()
        except PermanentGatewayError as exc:
            raise _translated(exc) from None
        return DemoAccount(
            login=login,
            password=initial_passwords(idempotency_id)[0],
            server=settings.MT5_DEMO_SERVER,
            balance=deposit,
            leverage=parse_int(user.get("Leverage")) or int(leverage),
            currency=self._currencies.get(str(user.get("Group") or group), currency),
            created_at=parse_server_time(user.get("Registration"), offset_seconds=offset),
        )

    def check_account(self, login: int) -> DemoAccountStatus:
        """Report on one account; an unknown login gives `exists=False`."""
        login = int(login)
        users = self._users([login])
        if not users:
            zero = Decimal("0.00")
            return DemoAccountStatus(login, False, False, False, zero, zero)
        user = users[0]
        balance, credit = parse_money(user.get("Balance")), parse_money(user.get("Credit"))
        states = self._call("/api/user/account/get_batch", {"login": [login]}).get("answer")
        equity = balance + credit  # an idle account has no trade state
        for state in states if isinstance(states, list) else []:
            if isinstance(state, dict) and parse_int(state.get("Login")) == login:
                equity = parse_money(state.get("Equity"))
        return DemoAccountStatus(
            login=login,
            exists=True,
            enabled=bool(parse_int(user.get("Rights")) & USER_RIGHT_ENABLED),
            # The Web API tells no terminal sessions: a manager cannot see who is logged in.
            connected=False,
            balance=balance,
            equity=equity,
        )

    def change_password(self, login: int, password: str) -> None:
        """Set the account's main password."""
        try:
            self.mt5.change_password(int(login), password)
        except PermanentGatewayError as exc:
            raise _translated(exc) from None

    def disable_account(self, login: int) -> None:
        """Clear USER_RIGHT_ENABLED (it can no longer log in); twice is harmless."""
        try:
            self.mt5.set_enabled(int(login), False)
        except PermanentGatewayError as exc:
            raise _translated(exc) from None

    # --- Creation -------------------------------------------------------------------------

    def _earlier_account(
        self, idempotency_id: str, tag: str, group: str
    ) -> tuple[dict | None, Any]:
        """The account an earlier call with this id made (None if none can have: the creation
        row is written here, before the first user/add) and its deposit if known."""
        try:
            with transaction.atomic():
                WebApiDemoCreation.objects.create(idempotency_id=idempotency_id)
            return None, None  # the first call with this id: nothing can exist yet
        except IntegrityError:
            pass
        creation = WebApiDemoCreation.objects.get(idempotency_id=idempotency_id)
        if creation.login:
            for earlier in self._users([creation.login]):
                if earlier.get("Comment") == tag:
                    return earlier, creation.deposit
        user = self._find_by_marker(tag, group)
        if user is not None:
            self._remember(idempotency_id, login=parse_int(user.get("Login")))
        elif creation.add_sent_at and timezone.now() < creation.add_sent_at + _add_settles():
            # The last user/add got no answer and its account is not there yet: a loaded
            # server may still make it (it does the work after the client gave up), so a
            # second user/add now could make a second account. The caller retries later.
            settles = (creation.add_sent_at + _add_settles()).isoformat(timespec="seconds")
            raise TransientGatewayError(
                "an earlier user/add of this account got no answer and may still be made: "
                f"not sent again before {settles}",
                gateway=GATEWAY,
            )
        return user, None

    def _add_user(self, idempotency_id: str, tag: str, *, name: str, leverage: int, group: str):
        main, investor = initial_passwords(idempotency_id)
        body = {
            "Name": name,
            "Group": group,
            "Leverage": str(int(leverage)),
            "Comment": tag,
            "PassMain": main,
            "PassInvestor": investor,
        }
        params = {"group": group, "name": name, "leverage": int(leverage)}
        self._remember(idempotency_id, add_sent_at=timezone.now())
        try:
            answer = self._call("/api/user/add", params, body=body)
        except UnknownOutcomeError:
            # The request left no later than now (it may have waited for the session behind
            # other threads' calls, and for a new handshake, long after add_sent_at): the
            # window a slow server may still make it in runs from here.
            self._remember(idempotency_id, add_sent_at=timezone.now())
            # The server may have made it: look before anyone sends user/add again.
            user = self._find_by_marker(tag, group)
            if user is None:
                # Not there (yet): a slow server may still make it, so no second user/add
                # now; the caller's retry looks again (the creation row says so).
                raise
        else:
            made = answer.get("answer")
            user = dict(made) if isinstance(made, dict) else {}
            user.setdefault("Login", answer.get("login"))
            if not parse_int(user.get("Login")):
                raise UnknownOutcomeError("user/add answered no login", gateway=GATEWAY)
        self._remember(idempotency_id, login=parse_int(user.get("Login")))
        return user

    def _initial_deposit(self, login: int, balance: Decimal, tag: str, *, look_first: bool):
        """Post the initial balance once; its amount (the earlier deposit's, on a replay)."""
        if look_first:
            done = self.mt5.find_deal_by_comment(login, tag)
            if done is not None:
                return done.profit
        try:
            self.mt5.post_balance(login, balance, comment=tag)
        except UnknownOutcomeError:
            done = self.mt5.find_deal_by_comment(login, tag)
            if done is None:
                raise  # the caller's retry looks again before posting
            return done.profit
        return balance

    def _find_by_marker(self, tag: str, group: str) -> dict | None:
        """The demo group's account whose Comment is `tag`, newest logins first."""
        answer = self._call("/api/user/logins", {"group": group})
        logins = sorted({parse_int(item) for item in answer.get("answer") or []}, reverse=True)
        size = self.mt5.batch_size
        for start in range(0, len(logins), size):
            for user in self._users(logins[start : start + size]):
                if user.get("Comment") == tag:
                    return user
        return None

    def _remember(self, idempotency_id: str, **fields) -> None:
        WebApiDemoCreation.objects.filter(idempotency_id=idempotency_id).update(**fields)

    def _users(self, logins: list[int]) -> list[dict]:
        body = self._call("/api/user/get_batch", {"login": logins}).get("answer")
        return [user for user in body if isinstance(user, dict)] if isinstance(body, list) else []

    def _check_currency(self, group: str, currency: str) -> None:
        """MT5 accounts take their group's currency: a pool asking for another is refused."""
        if group not in self._currencies:
            try:
                answer = self._call("/api/group/get", {"group": group})
            except PermanentGatewayError as exc:
                if exc.code in ("account_not_found", "retcode_13"):
                    raise PermanentGatewayError(
                        f"the demo group {group!r} does not exist on the demo server",
                        gateway=GATEWAY,
                        code="bad_request",
                    ) from None
                raise
            group_answer = answer.get("answer")
            body = group_answer if isinstance(group_answer, dict) else {}
            self._currencies[group] = str(body.get("Currency") or currency)
        if self._currencies[group] != currency:
            raise PermanentGatewayError(
                f"the demo group {group!r} is in {self._currencies[group]}, not {currency}",
                gateway=GATEWAY,
                code="bad_request",
            )


def _validate(
    idempotency_id: str, name: str, balance: Decimal, leverage: int, currency: str, group: str
) -> None:
    problems = []
    if not idempotency_id or len(idempotency_id) > 64:
        problems.append("idempotency_id must have 1 to 64 characters")
    if not name.strip() or len(name) > MAX_NAME:
        problems.append(f"name must have 1 to {MAX_NAME} characters")
    if not isinstance(balance, Decimal) or balance <= 0 or balance != balance.quantize(CENT):
        problems.append("balance must be a positive Decimal in cents")
    if not 1 <= leverage <= MAX_LEVERAGE:
        problems.append(f"leverage must be 1 to {MAX_LEVERAGE}")
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        problems.append("currency must be a 3-letter ISO code")
    if not group:
        problems.append("no demo group: set MT5_DEMO_GROUP")
    if problems:
        raise PermanentGatewayError("; ".join(problems), gateway=GATEWAY, code="bad_request")
