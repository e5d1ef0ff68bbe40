"""`manage.py mt5 check` and doctor's MT5 line: connect to an MT5 server's Web API as the
product would, shake hands, and say what the manager account can and cannot do.

What is read, and where from (spec /work/shared/mt5-webapi.md):
- the versions: `version_access` and `version_trade` of `/api/auth/answer` (section 2.3);
- the time offset: `/api/time/server` against this machine's UTC clock, to 15 minutes;
- the groups: `/api/group/total` + `/api/group/next` (what `list_groups` reads), cut to the
  group mask; on the demo server, `/api/group/get` of the demo group;
- the logins: `/api/user/logins` over the mask (what `list_logins` reads);
- the rights of section 8, probed with harmless reads on a few of those logins: retcode 8 on
  `user/get_batch` / `user/account/get_batch` means no "Access to accounts", on
  `deal/get_batch` / `position/get_batch` no "Access to trade orders"; names, countries and
  emails all empty on every sampled account suggest no "Access to personal data".

The Web API has no call that shows a manager its own rights, and "Modify accounts",
"Accountant" and the dealer rights only show on a write (`user/update`, `trade/balance`,
`dealer/send_request`): they are listed as not probed, never guessed.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from gateways.errors import GatewayError, PermanentGatewayError

from .client import RIGHTS, WebApiClient, parse_int, server_seconds
from .gateway import GROUP_PAGE, mask_matches

WEBAPI_GATEWAY = "gateways.mt5.webapi.gateway.WebApiMT5Gateway"
SAMPLE_LOGINS = 20  # accounts the harmless reads look at
GROUPS_SHOWN = 10

CONNECT = "Connect using MetaTrader 5 Manager"
GROUPS = RIGHTS["/api/group/get"]
ACCOUNTS = "Access to accounts"
PERSONAL_DATA = "Access to personal data"
TRADE_ORDERS = "Access to trade orders"
MODIFY = "Modify accounts"
ACCOUNTANT = "Accountant"
DEALER = RIGHTS["/api/dealer/send_request"]
LOGIN_RETCODES = frozenset({"1001", "1002"})  # invalid account, account disabled
PASSWORD_RETCODES = frozenset({"3006"})  # invalid account password
PERSONAL_FIELDS = ("Name", "FirstName", "LastName", "Country", "Email", "Phone")

# Status of one right.
GRANTED, MISSING, DOUBTFUL, NOT_PROBED = "ok", "MISSING", "WARN", "?"


class NotConfigured(Exception):
    """Nothing to check (the simulated gateway, no demo server): not a failure."""


@dataclass(frozen=True)
class Connection:
    """One Web API connection the product makes, with the names of its settings."""

    label: str
    url: str
    login: str
    password: str
    ca_bundle: str
    cert_sha256: str
    group_mask: str
    configured_offset: int | None
    timeout: float
    demo: bool = False
    setting: dict[str, str] = field(default_factory=dict)  # role -> setting name

    def name(self, role: str) -> str:
        return self.setting[role]


@dataclass(frozen=True)
class Right:
    name: str
    status: str
    detail: str


@dataclass
class Report:
    connection: Connection
    connected: bool = False
    error: str = ""  # why it could not connect or authenticate: one line
    tls: str = ""
    version_access: str = ""
    version_trade: str = ""
    offset_seconds: int | None = None
    groups: list[str] = field(default_factory=list)
    logins: int | None = None
    rights: list[Right] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.connected and not self.problems and not self.missing

    @property
    def missing(self) -> list[str]:
        return [right.name for right in self.rights if right.status == MISSING]

    @property
    def not_probed(self) -> list[str]:
        return [right.name for right in self.rights if right.status == NOT_PROBED]

    def lines(self) -> list[str]:
        """The full report, one fact a line."""
        conn = self.connection
        lines = [f"{conn.label}: {conn.url}, manager {conn.login}"]
        if not self.connected:
            return lines  # the error is the one line the caller prints
        lines.append(f"  connection  {self.tls}; handshake done (mutual MD5, spec section 2)")
        lines.append(
            f"  version     access server {self.version_access or '?'}, "
            f"trade server {self.version_trade or '?'}"
        )
        if self.offset_seconds is not None:
            configured = ""
            if conn.configured_offset is not None:
                configured = f"; {conn.name('offset')} says {format_offset(conn.configured_offset)}"
            lines.append(
                f"  time        trade server is {format_offset(self.offset_seconds)} "
                f"(measured: /api/time/server against this machine's clock{configured})"
            )
        shown = ", ".join(self.groups[:GROUPS_SHOWN])
        more = len(self.groups) - GROUPS_SHOWN
        if more > 0:
            shown += f" and {more} more"
        lines.append(
            f"  groups      {len(self.groups)} visible matching {conn.name('mask')}="
            f"{conn.group_mask}" + (f": {shown}" if shown else "")
        )
        if self.logins is not None:
            lines.append(f"  logins      {self.logins:,} in those groups")
        lines.append("  rights (spec section 8):")
        width = max(len(right.name) for right in self.rights) if self.rights else 0
        for right in self.rights:
            lines.append(f"    {right.status:<8} {right.name:<{width}}  {right.detail}")
        for problem in self.problems:
            lines.append(f"  FAIL {problem}")
        return lines

    def verdict(self) -> str:
        """One line: what is wrong, or that it passed and what could not be probed."""
        if not self.connected:
            return self.error
        wrong = [f"missing right {name!r}" for name in self.missing] + self.problems
        if wrong:
            return "; ".join(wrong)
        summary = (
            f"{self.connection.url}: access {self.version_access}, trade "
            f"{self.version_trade}, {format_offset(self.offset_seconds or 0)}, "
            f"{len(self.groups)} group(s), {self.logins or 0:,} login(s)"
        )
        if self.not_probed:
            summary += "; not probed (writes): " + ", ".join(self.not_probed)
        return summary


def format_offset(seconds: int) -> str:
    """Trade server minus UTC as "UTC+3 h", "UTC+5 h 30 min", "UTC-4 h", "UTC+0 h"."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(int(seconds)), 3600)
    minutes = rest // 60
    return f"UTC{sign}{hours} h" + (f" {minutes} min" if minutes else "")


# --- Which connection -----------------------------------------------------------------------


def live_connection(*, timeout: float | None = None) -> Connection:
    """The MT5 server of MT5_GATEWAY; NotConfigured when that is not the Web API gateway."""
    gateway = settings.MT5_GATEWAY
    if gateway != WEBAPI_GATEWAY:
        kind = "the simulated server" if gateway.endswith(".SimulatedMT5Gateway") else gateway
        raise NotConfigured(
            f"MT5_GATEWAY is {kind} ({gateway}): no MT5 Web API to check. Set MT5_GATEWAY="
            f"{WEBAPI_GATEWAY} and MT5_WEBAPI_URL to connect a real MT5 server."
        )
    return Connection(
        label="MT5 server",
        url=settings.MT5_WEBAPI_URL,
        login=str(settings.MT5_MANAGER_LOGIN or ""),
        password=settings.MT5_MANAGER_PASSWORD or "",
        ca_bundle=settings.MT5_WEBAPI_CA_BUNDLE,
        cert_sha256=settings.MT5_WEBAPI_CERT_SHA256,
        group_mask=settings.MT5_WEBAPI_GROUP_MASK or "*",
        configured_offset=settings.MT5_WEBAPI_TIME_OFFSET_SECONDS,
        timeout=timeout or settings.MT5_REQUEST_TIMEOUT_SECONDS,
        setting={
            "url": "MT5_WEBAPI_URL",
            "login": "MT5_MANAGER_LOGIN",
            "password": "MT5_MANAGER_PASSWORD",
            "ca": "MT5_WEBAPI_CA_BUNDLE",
            "cert": "MT5_WEBAPI_CERT_SHA256",
            "mask": "MT5_WEBAPI_GROUP_MASK",
            "offset": "MT5_WEBAPI_TIME_OFFSET_SECONDS",
        },
    )


def demo_connection(*, timeout: float | None = None) -> Connection:
    """The demo server the demo pool provisions on (MT5_DEMO_*); NotConfigured when blank."""
    url = getattr(settings, "MT5_DEMO_URL", "") or ""
    if not url:
        raise NotConfigured("demo server: not configured (MT5_DEMO_URL is blank)")
    offset = getattr(settings, "MT5_DEMO_TIME_OFFSET_SECONDS", None)
    return Connection(
        label="demo server",
        url=url,
        login=str(getattr(settings, "MT5_DEMO_MANAGER_LOGIN", "") or ""),
        password=getattr(settings, "MT5_DEMO_MANAGER_PASSWORD", "") or "",
        ca_bundle=getattr(settings, "MT5_DEMO_CA_BUNDLE", "") or "",
        cert_sha256=getattr(settings, "MT5_DEMO_CERT_SHA256", "") or "",
        group_mask=getattr(settings, "MT5_DEMO_GROUP", "") or "",
        configured_offset=None if offset in (None, "") else int(offset),
        timeout=timeout or settings.MT5_REQUEST_TIMEOUT_SECONDS,
        demo=True,
        setting={
            "url": "MT5_DEMO_URL",
            "login": "MT5_DEMO_MANAGER_LOGIN",
            "password": "MT5_DEMO_MANAGER_PASSWORD",
            "ca": "MT5_DEMO_CA_BUNDLE",
            "cert": "MT5_DEMO_CERT_SHA256",
            "mask": "MT5_DEMO_GROUP",
            "offset": "MT5_DEMO_TIME_OFFSET_SECONDS",
        },
    )


# --- The check ------------------------------------------------------------------------------


def check(conn: Connection, *, now: Callable[[], datetime] | None = None) -> Report:
    """Connect, shake hands, read what can be read; never raises for the server's answers."""
    report = Report(conn)
    client = _client(conn, report)
    if client is None:
        return report
    try:
        try:
            client.ping()  # connect, TLS, handshake, then /api/test/access
        except GatewayError as exc:
            report.error = connect_error(exc, conn)
            return report
        report.connected = True
        report.tls = _tls_text(conn, client)
        report.version_access = client.versions.get("version_access", "")
        report.version_trade = client.versions.get("version_trade", "")
        _Probe(client, conn, report, now or (lambda: datetime.now(UTC))).run()
    finally:
        client.close()
    return report


def _client(conn: Connection, report: Report) -> WebApiClient | None:
    if not conn.url:
        report.error = f"{conn.name('url')} is not set"
        return None
    try:
        login = int(conn.login)
    except ValueError:
        report.error = (
            f"{conn.name('login')} must be the manager's numeric login, not {conn.login!r}"
        )
        return None
    if not conn.password:
        report.error = f"{conn.name('password')} is not set"
        return None
    try:
        return WebApiClient(
            url=conn.url,
            login=login,
            password=conn.password,
            timeout=conn.timeout,
            ca_bundle=conn.ca_bundle,
            cert_sha256=conn.cert_sha256,
            # Not measured at connect: the check measures it itself, whatever is configured.
            time_offset_seconds=0,
        )
    except (GatewayError, ValueError) as exc:
        report.error = str(exc).replace("MT5_WEBAPI_URL", conn.name("url"))
        return None
    except OSError as exc:  # an unreadable CA bundle
        report.error = f"{conn.name('ca')} cannot be read: {exc}"
        return None


def connect_error(exc: GatewayError, conn: Connection) -> str:
    """One line saying why the connection or the login failed, naming the setting to fix."""
    code = getattr(exc, "code", "")
    text = str(exc)
    if code == "auth_failed" and getattr(exc, "status", None) == 403:
        return (
            f"the server refused the manager's password (HTTP 403 on auth/answer): check "
            f"{conn.name('password')} (and that this machine's IP is on the manager's "
            "allow-list)"
        )
    if code == "auth_failed" and "cli_rand_answer" in text:
        return (
            "the server could not prove it knows the manager's password (wrong "
            f"cli_rand_answer, 1008): is {conn.url} really the broker's MT5 server?"
        )
    if code == "auth_failed":
        detail = text.split(": ", 1)[-1]
        number = detail.split(" ", 1)[0]
        if number in PASSWORD_RETCODES:
            fix = conn.name("password")
            return f"the server refused the manager's password ({detail}): check {fix}"
        if number in LOGIN_RETCODES:
            fix = conn.name("login")
            return f"the server refused manager login {conn.login} ({detail}): check {fix}"
        return (
            f"the server refused the manager's login ({detail}): check {conn.name('login')} "
            f"and {conn.name('password')}"
        )
    if code == "ip_not_allowed":
        return (
            f"the server refused this machine's IP for manager {conn.login} (retcode 1012): "
            "ask the MT5 administrator to add it to the manager's IP allow-list"
        )
    if code == "certificate_untrusted":
        reason = text.split("(", 1)[-1].split(")", 1)[0] if "(" in text else text
        return (
            f"TLS: the server's certificate is not trusted ({reason}): set {conn.name('ca')} "
            f"to the CA that signed it, or pin it with {conn.name('cert')}"
        )
    if code == "certificate_mismatch":
        return f"TLS: the server's certificate does not match {conn.name('cert')}"
    if text.startswith("cannot connect"):
        return text
    return f"cannot connect or log in: {text}"


def _tls_text(conn: Connection, client: WebApiClient) -> str:
    if not client.tls:
        return "plain HTTP (allowed to a loopback stand-in only)"
    if conn.cert_sha256:
        return f"TLS, certificate pinned by {conn.name('cert')}"
    if conn.ca_bundle:
        return f"TLS, certificate verified against {conn.name('ca')}"
    return "TLS, certificate verified against the system's CAs"


class _Probe:
    """The reads after the handshake, each noting what it shows about a right."""

    def __init__(self, client, conn, report, now) -> None:
        self.client, self.conn, self.report, self.now = client, conn, report, now

    def call(self, path: str, params: dict[str, Any] | None = None) -> dict | None:
        """The answer, or None when the manager lacks the right (retcode 8)."""
        try:
            return self.client.call(path, params)
        except PermanentGatewayError as exc:
            if exc.code == "missing_permission":
                return None
            raise

    def run(self) -> None:
        report = self.report
        report.rights.append(Right(CONNECT, GRANTED, "the manager logged in (auth/start, answer)"))
        steps = (self.offset, self.groups, self.logins_and_accounts)
        for step in steps:
            try:
                step()
            except GatewayError as exc:
                report.problems.append(f"{step.__name__.replace('_', ' ')}: {exc}")
        self.not_probed()

    def offset(self) -> None:
        self.report.offset_seconds = self.client.measure_time_offset()
        configured = self.conn.configured_offset
        if configured is not None and configured != self.report.offset_seconds:
            self.report.problems.append(
                f"{self.conn.name('offset')} says {format_offset(configured)} but the server "
                f"is {format_offset(self.report.offset_seconds)}: deal times would be stored "
                "wrong; correct it or leave it unset to measure at connect"
            )

    def groups(self) -> None:
        report, mask = self.report, self.conn.group_mask
        if self.conn.demo:
            if not mask:
                report.problems.append(f"{self.conn.name('mask')} is blank: no demo group")
                return
            try:
                answer = self.call("/api/group/get", {"group": mask})
            except PermanentGatewayError as exc:
                if exc.code != "account_not_found":  # retcode 13: no such group
                    raise
                report.problems.append(
                    f"the demo group {mask} ({self.conn.name('mask')}) does not exist on the server"
                )
                return
            if answer is None:
                report.rights.append(Right(GROUPS, MISSING, f"group/get of {mask} answered 8"))
                return
            report.groups = [str((answer.get("answer") or {}).get("Group") or mask)]
            report.rights.append(Right(GROUPS, GRANTED, f"the demo group {mask} is visible"))
            return
        total_answer = self.call("/api/group/total")
        if total_answer is None:
            report.rights.append(Right(GROUPS, MISSING, "group/total answered retcode 8"))
            return
        total = parse_int((total_answer.get("answer") or {}).get("Total"))
        names: set[str] = set()
        for index in range(0, total, GROUP_PAGE):
            answer = self.call(
                "/api/group/next", {"index": index, "count": min(GROUP_PAGE, total - index)}
            )
            if answer is None:
                report.rights.append(Right(GROUPS, MISSING, "group/next answered retcode 8"))
                return
            body = answer.get("answer")
            items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
            names.update(str(item.get("Group") or "") for item in items if isinstance(item, dict))
        names.discard("")
        report.groups = sorted((name for name in names if mask_matches(mask, name)), key=str.lower)
        if report.groups:
            detail = f"{len(report.groups)} of the {total} visible groups match the mask"
            report.rights.append(Right(GROUPS, GRANTED, detail))
        else:
            report.rights.append(
                Right(
                    GROUPS,
                    MISSING,
                    f"none of the {total} groups the manager sees matches "
                    f"{self.conn.name('mask')}={mask}",
                )
            )

    def logins_and_accounts(self) -> None:
        report, mask = self.report, self.conn.group_mask
        if not mask:
            return
        answer = self.call("/api/user/logins", {"group": mask})
        if answer is None:
            report.rights.append(Right(ACCOUNTS, MISSING, "user/logins answered retcode 8"))
            for name in (PERSONAL_DATA, TRADE_ORDERS):
                report.rights.append(Right(name, NOT_PROBED, f"not probed: needs {ACCOUNTS!r}"))
            return
        logins = sorted({parse_int(item) for item in answer.get("answer") or []} - {0})
        report.logins = len(logins)
        sample = logins[:SAMPLE_LOGINS]
        if not sample:
            for name in (ACCOUNTS, PERSONAL_DATA, TRADE_ORDERS):
                report.rights.append(Right(name, NOT_PROBED, "no account in the groups to read"))
            return
        users = self.call("/api/user/get_batch", {"login": sample})
        states = self.call("/api/user/account/get_batch", {"login": sample})
        refused = [
            path
            for path, got in (("user/get_batch", users), ("user/account/get_batch", states))
            if got is None
        ]
        if refused:
            report.rights.append(
                Right(ACCOUNTS, MISSING, " and ".join(refused) + " answered retcode 8")
            )
        else:
            report.rights.append(
                Right(ACCOUNTS, GRANTED, f"user and trade state of {len(sample)} account(s) read")
            )
        if users is not None:
            report.rights.append(self.personal_data(users))
        self.trade_orders(sample)

    def personal_data(self, users: dict) -> Right:
        rows = [row for row in users.get("answer") or [] if isinstance(row, dict)]
        filled = [row for row in rows if any(str(row.get(f) or "") for f in PERSONAL_FIELDS)]
        if not rows:
            return Right(PERSONAL_DATA, NOT_PROBED, "user/get_batch returned no account")
        if filled:
            return Right(
                PERSONAL_DATA, GRANTED, f"names or countries on {len(filled)} of {len(rows)}"
            )
        return Right(
            PERSONAL_DATA,
            DOUBTFUL,
            f"name, country and email empty on all {len(rows)} sampled account(s): probably "
            "not granted (campaigns by country would see none)",
        )

    def trade_orders(self, sample: list[int]) -> None:
        offset = self.report.offset_seconds or 0
        now = self.now()
        window = {
            "login": sample,
            "from": server_seconds(now - timedelta(hours=1), offset_seconds=offset),
            "to": server_seconds(now, offset_seconds=offset),
        }
        deals = self.call("/api/deal/get_batch", window)
        positions = self.call("/api/position/get_batch", {"login": sample})
        refused = [
            path
            for path, got in (("deal/get_batch", deals), ("position/get_batch", positions))
            if got is None
        ]
        if refused:
            self.report.rights.append(
                Right(TRADE_ORDERS, MISSING, " and ".join(refused) + " answered retcode 8")
            )
        else:
            self.report.rights.append(
                Right(TRADE_ORDERS, GRANTED, "deals and positions of the sample read")
            )

    def not_probed(self) -> None:
        writes = [
            (MODIFY, "user/add, user/update"),
            (ACCOUNTANT, "trade/balance"),
        ]
        if not self.conn.demo:
            writes.append((DEALER, "dealer/send_request"))
        for name, calls in writes:
            self.report.rights.append(
                Right(name, NOT_PROBED, f"not probed: only a write ({calls}) would show it")
            )
