"""The Web API session: one authenticated HTTP/1.1 keep-alive connection to one MT5 access
server, every request serialized on it (spec sections 1, 3 and 10).

The session is the connection: there is no token. So the client keeps one `http.client`
connection, authenticates it lazily, pings `/api/test/access` before a request when it sat
idle more than 20 s, and after a drop or a 403 authenticates a new connection and resends only
what is safe to resend. A write the server may have done (`trade/balance`, `user/add`,
`dealer/send_request`) is never resent: a lost answer raises `UnknownOutcomeError` and the
caller looks the deal up by its comment.

Every value arrives as a string: `parse_int`, `parse_money`, `parse_decimal` and
`parse_server_time` turn them into `int`, `Decimal` and aware UTC datetimes. `retcode` is read
by its leading integer and mapped to the product's gateway errors by `retcode_error`.
"""

import contextlib
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

from gateways.errors import (
    GatewayError,
    PermanentGatewayError,
    TransientGatewayError,
    UnknownOutcomeError,
)

from ..types import to_money
from .handshake import HandshakeError, authenticate

logger = logging.getLogger(__name__)

GATEWAY = "mt5"
# MetaQuotes: ping about every 20 s when idle, not more often; the server drops at 180 s.
IDLE_PING_SECONDS = 20.0
# Server time offsets are whole quarter hours (every real time zone is).
OFFSET_STEP_SECONDS = 900

# Writes the server may have done although its answer was lost: never resent.
NOT_IDEMPOTENT = frozenset({"/api/trade/balance", "/api/user/add", "/api/dealer/send_request"})

# The manager right each endpoint needs (spec section 8), named in `missing_permission`.
RIGHTS = {
    "/api/trade/balance": "Accountant",
    "/api/user/add": "Modify accounts",
    "/api/user/update": "Modify accounts",
    "/api/user/change_password": "Modify accounts",
    "/api/user/get": "Access to accounts",
    "/api/user/get_batch": "Access to accounts",
    "/api/user/logins": "Access to accounts",
    "/api/user/account/get_batch": "Access to accounts",
    "/api/deal/get_batch": "Access to trade orders",
    "/api/position/get_batch": "Access to trade orders",
    "/api/dealer/send_request": "Dealer (send dealer requests)",
    "/api/dealer/get_request_result": "Dealer (send dealer requests)",
    "/api/group/get": "the groups on the manager's Common tab",
    "/api/group/next": "the groups on the manager's Common tab",
    "/api/group/total": "the groups on the manager's Common tab",
}
TRANSIENT_RETCODES = frozenset({9, 10, 12, 10024})
INVALID_AMOUNT_RETCODES = frozenset({4005})
LOGIN_UNAVAILABLE_RETCODES = frozenset({3002, 3003, 3004})
_SPECIAL = "=|\\\n"


# --- Parsing: every value on the wire is a string ----------------------------------------


def retcode_number(retcode: Any) -> int:
    """The leading integer of a retcode ("0 Done" -> 0); unreadable -> ValueError."""
    text = str(retcode).strip()
    return int(text.split(" ", 1)[0])


def parse_int(value: Any) -> int:
    """An MT5 integer field ("764636", "" -> 0)."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text else 0


def parse_decimal(value: Any) -> Decimal:
    """An MT5 decimal field as Decimal, exactly as written ("26000.00", "" -> 0)."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return Decimal(0)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return number


def parse_money(value: Any) -> Decimal:
    """An MT5 money field quantized to cents."""
    return to_money(parse_decimal(value))


def parse_server_time(value: Any, *, offset_seconds: int) -> datetime:
    """Trade-server seconds since 1970 (the broker's zone) as an aware UTC datetime."""
    return datetime.fromtimestamp(parse_int(value) - offset_seconds, tz=UTC)


def server_seconds(moment: datetime, *, offset_seconds: int) -> int:
    """An aware datetime as trade-server seconds, for `from`/`to`."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return int(moment.timestamp()) + offset_seconds


def escape(value: Any) -> str:
    """MT5's parameter escaping (spec 1.7): `=`, `|`, newline and a `\\` that would read as
    an escape get a `\\` in front; any other `\\` is literal, so `demo\\forex` stays as is."""
    text = str(value)
    if not any(char in text for char in _SPECIAL):
        return text  # the usual case (logins, tickets, amounts): nothing to escape
    out = []
    for index, char in enumerate(text):
        if char in "=|\n":
            out.append("\\" + char)
        elif char == "\\":
            following = text[index + 1 : index + 2]
            out.append("\\\\" if (following == "" or following in _SPECIAL) else "\\")
        else:
            out.append(char)
    return "".join(out)


def query_string(params: Mapping[str, Any]) -> str:
    """URL-encoded query, every value escaped; lists become comma lists."""
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset):
            # Logins and tickets (ints) never need escaping: 1,000 of them a monitor batch.
            value = ",".join(str(item) if type(item) is int else escape(item) for item in value)
        else:
            value = escape(value)
        pairs.append((key, value))
    return urlencode(pairs, quote_via=quote, safe=",*!")


def retcode_error(
    code: int,
    text: str,
    *,
    path: str,
    no_money: str = "insufficient_balance",
    write: bool = False,
) -> GatewayError:
    """The product's error for a non-zero retcode on `path`."""
    message = f"{path}: retcode {code} {text}".strip()
    if code in TRANSIENT_RETCODES:
        return TransientGatewayError(message, gateway=GATEWAY, code=f"retcode_{code}")
    if code == 13:
        return PermanentGatewayError(message, gateway=GATEWAY, code="account_not_found")
    if code == 10019:
        return PermanentGatewayError(message, gateway=GATEWAY, code=no_money)
    if code == 8:
        right = RIGHTS.get(path, "the right this operation needs")
        return PermanentGatewayError(
            f"{message}: the manager account lacks the right {right!r} (or access to the "
            "account's group)",
            gateway=GATEWAY,
            code="missing_permission",
        )
    if code in INVALID_AMOUNT_RETCODES or (code == 3 and path == "/api/trade/balance"):
        return PermanentGatewayError(message, gateway=GATEWAY, code="invalid_amount")
    if code == 3006:
        return PermanentGatewayError(message, gateway=GATEWAY, code="invalid_password")
    if code in LOGIN_UNAVAILABLE_RETCODES:
        return PermanentGatewayError(message, gateway=GATEWAY, code="login_unavailable")
    if code == 3:
        return PermanentGatewayError(message, gateway=GATEWAY, code="invalid_parameters")
    return PermanentGatewayError(message, gateway=GATEWAY, code=f"retcode_{code}")


# --- TLS ----------------------------------------------------------------------------------


def tls_context(*, ca_bundle: str = "", cert_sha256: str = "") -> ssl.SSLContext:
    """Verified TLS by default; a private CA bundle; or, with a pinned certificate, no chain
    check (self-signed) but the certificate's SHA-256 compared after the handshake."""
    if cert_sha256:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_bundle or None)


def normalized_fingerprint(value: str) -> str:
    return value.replace(":", "").replace(" ", "").strip().lower()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- The session --------------------------------------------------------------------------


class _Dropped(Exception):
    """The connection broke: `sent` says whether the request may have reached the server."""

    def __init__(self, reason: str, *, sent: bool, timed_out: bool = False):
        self.sent = sent
        self.timed_out = timed_out
        super().__init__(reason)


class _Forbidden(Exception):
    """HTTP 403: the connection is not (or no longer) authenticated; nothing was done."""


@dataclass
class Stats:
    """What the client sent, for the benchmark: HTTP calls and bytes both ways."""

    calls: int = 0
    sent_bytes: int = 0
    received_bytes: int = 0
    logins: int = 0  # handshakes done
    by_path: dict[str, int] = field(default_factory=dict)


class WebApiClient:
    """One manager session on one MT5 access server (thread-safe; requests serialized)."""

    def __init__(
        self,
        *,
        url: str,
        login: int,
        password: str,
        timeout: float,
        ca_bundle: str = "",
        cert_sha256: str = "",
        time_offset_seconds: int | None = None,
        clock=time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise PermanentGatewayError(
                f"MT5_WEBAPI_URL must be https://host:port, not {url!r}",
                gateway=GATEWAY,
                code="not_configured",
            )
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            # The Web API is HTTPS only; plain HTTP is for the local stand-in.
            raise PermanentGatewayError(
                "MT5_WEBAPI_URL must use https:// (plain http only to a loopback stand-in)",
                gateway=GATEWAY,
                code="not_configured",
            )
        if timeout is None or timeout <= 0:
            raise ValueError("a positive timeout is mandatory for outside calls")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        self.login = int(login)
        self._password = password
        self.timeout = float(timeout)
        self.cert_sha256 = normalized_fingerprint(cert_sha256)
        self._context = (
            tls_context(ca_bundle=ca_bundle, cert_sha256=cert_sha256) if self.tls else None
        )
        self._configured_offset = time_offset_seconds
        self.time_offset_seconds = time_offset_seconds or 0
        self.versions: dict[str, str] = {}
        self.stats = Stats()
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._authenticated = False
        self._last_used = 0.0
        self._pid = os.getpid()

    # --- Public ---------------------------------------------------------------------------

    def call(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        body: Any = None,
        no_money: str = "insufficient_balance",
    ) -> dict[str, Any]:
        """Send one command on the session; return the whole JSON answer (retcode 0 or 1).

        Reads and idempotent writes are resent once on a fresh session after a drop or a
        403, and asked once more after a transient retcode (9, 10, 12, 10024: the server
        could not do it now); a write in NOT_IDEMPOTENT whose answer was lost raises
        UnknownOutcomeError, and one refused with a transient retcode is not asked again.
        """
        try:
            return self._call_once(path, params, body=body, no_money=no_money)
        except TransientGatewayError as exc:
            if path in NOT_IDEMPOTENT or not str(exc.code).startswith("retcode_"):
                raise
        return self._call_once(path, params, body=body, no_money=no_money)

    def _call_once(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        *,
        body: Any,
        no_money: str,
    ) -> dict[str, Any]:
        resend_safe = path not in NOT_IDEMPOTENT
        # The session is one connection: a caller waits its turn, but not for ever. A write
        # that left long after its caller decided on it could land after a newer one (a demo
        # password change after its rotation's lease); past one timeout nothing is sent.
        if not self._lock.acquire(timeout=self.timeout):
            raise TransientGatewayError(
                f"{path}: the Web API session stayed busy for {self.timeout:g} s; nothing sent",
                gateway=GATEWAY,
                code="session_busy",
            )
        try:
            self._ensure_session()
            try:
                answer = self._request(path, params, body)
            except _Forbidden:
                self._drop()
                if not resend_safe:
                    # 403 is an answer: the server refused before doing anything.
                    raise TransientGatewayError(
                        f"{path}: session expired (HTTP 403); nothing was done",
                        gateway=GATEWAY,
                        code="session_expired",
                        status=403,
                    ) from None
                answer = self._resend(path, params, body)
            except _Dropped as exc:
                self._drop()
                if not resend_safe:
                    if exc.sent:
                        raise UnknownOutcomeError(
                            f"{path}: no answer ({exc})", gateway=GATEWAY
                        ) from None
                    raise TransientGatewayError(f"{path}: {exc}", gateway=GATEWAY) from None
                if exc.timed_out:
                    # A slow server is not helped by the same question again at once.
                    raise TransientGatewayError(f"{path}: {exc}", gateway=GATEWAY) from None
                answer = self._resend(path, params, body)
        finally:
            self._lock.release()
        return self._checked(answer, path=path, no_money=no_money, write=not resend_safe)

    def ping(self) -> None:
        """Check the session answers (`/api/test/access`)."""
        self.call("/api/test/access")

    def close(self) -> None:
        """Log out politely and close the connection."""
        with self._lock:
            if self._conn is not None and self._authenticated:
                with contextlib.suppress(_Dropped, _Forbidden, GatewayError):
                    self._request("/api/quit", None, None)
            self._drop()

    def session_offset(self) -> int:
        """The trade server's offset from UTC in seconds, connecting first if needed."""
        with self._lock:
            self._ensure_session()
            return self.time_offset_seconds

    def measure_time_offset(self) -> int:
        """Trade-server time minus UTC from `/api/time/server`, to the nearest 15 minutes."""
        answer = self.call("/api/time/server")
        return self._offset_from(answer)

    # --- Session --------------------------------------------------------------------------

    def _ensure_session(self) -> None:
        if self._pid != os.getpid():
            # A forked worker must not share its parent's socket (or its session).
            self._conn, self._authenticated, self._pid = None, False, os.getpid()
        if self._conn is not None and self._authenticated:
            if self._clock() - self._last_used <= IDLE_PING_SECONDS:
                return
            try:
                self._checked(
                    self._request("/api/test/access", None, None), path="/api/test/access"
                )
                return
            except (_Dropped, _Forbidden, TransientGatewayError):
                self._drop()  # the idle connection died: a fresh one below
        self._connect_and_authenticate()

    def _connect_and_authenticate(self) -> None:
        self._drop()
        self._conn = self._open()
        try:
            self.versions = authenticate(self._auth_get, login=self.login, password=self._password)
        except HandshakeError as exc:
            self._drop()
            raise PermanentGatewayError(
                f"MT5 Web API handshake failed: {exc}", gateway=GATEWAY, code="auth_failed"
            ) from None
        except (_Dropped, _Forbidden) as exc:
            self._drop()
            if isinstance(exc, _Forbidden):
                raise PermanentGatewayError(
                    "MT5 Web API refused the manager login (HTTP 403): check "
                    "MT5_MANAGER_LOGIN/MT5_MANAGER_PASSWORD and the manager's IP allow-list",
                    gateway=GATEWAY,
                    code="auth_failed",
                    status=403,
                ) from None
            raise TransientGatewayError(f"auth: {exc}", gateway=GATEWAY) from None
        except GatewayError:
            self._drop()
            raise
        self._authenticated = True
        self.stats.logins += 1
        if self._configured_offset is None:
            try:
                self.time_offset_seconds = self._offset_from(
                    self._checked(
                        self._request("/api/time/server", None, None), path="/api/time/server"
                    )
                )
            except (_Dropped, _Forbidden) as exc:
                self._drop()
                raise TransientGatewayError(f"time/server: {exc}", gateway=GATEWAY) from None

    def _auth_get(self, path: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        answer = self._request(path, params, None)
        code = self._retcode(answer, path=path)
        if code not in (0, 1):
            text = str(answer.get("retcode", "")).partition(" ")[2]
            if code in TRANSIENT_RETCODES:
                raise TransientGatewayError(f"{path}: {code} {text}", gateway=GATEWAY)
            raise PermanentGatewayError(
                f"MT5 Web API refused the manager login: {code} {text}",
                gateway=GATEWAY,
                code="ip_not_allowed" if code == 1012 else "auth_failed",
            )
        return answer

    def _resend(self, path: str, params: Mapping[str, Any] | None, body: Any) -> dict:
        self._connect_and_authenticate()
        try:
            return self._request(path, params, body)
        except (_Dropped, _Forbidden) as exc:
            self._drop()
            raise TransientGatewayError(
                f"{path}: failed again on a fresh session ({exc.__class__.__name__})",
                gateway=GATEWAY,
            ) from None

    def _open(self) -> http.client.HTTPConnection:
        try:
            if self.tls:
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self._context
                )
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except ssl.SSLCertVerificationError as exc:
            raise PermanentGatewayError(
                f"MT5 Web API certificate not trusted ({exc.verify_message}): set "
                "MT5_WEBAPI_CA_BUNDLE or MT5_WEBAPI_CERT_SHA256",
                gateway=GATEWAY,
                code="certificate_untrusted",
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientGatewayError(
                f"cannot connect to the MT5 Web API at {self.host}:{self.port}: {exc}",
                gateway=GATEWAY,
            ) from None
        if self.tls and self.cert_sha256:
            der = cast(ssl.SSLSocket, conn.sock).getpeercert(binary_form=True) or b""  # TLS
            if hashlib.sha256(der).hexdigest() != self.cert_sha256:
                conn.close()
                raise PermanentGatewayError(
                    "the MT5 Web API certificate does not match MT5_WEBAPI_CERT_SHA256",
                    gateway=GATEWAY,
                    code="certificate_mismatch",
                )
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn = None
        self._authenticated = False

    # --- One request ------------------------------------------------------------------------

    def _request(self, path: str, params: Mapping[str, Any] | None, body: Any) -> dict:
        if self._conn is None:
            raise _Dropped("not connected", sent=False)
        target = path + ("?" + query_string(params) if params else "")
        headers = {"Connection": "keep-alive", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            # The documented type, though the body is JSON.
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        method = "POST" if body is not None else "GET"
        self.stats.calls += 1
        self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
        self.stats.sent_bytes += len(target) + len(payload or b"") + 64
        sent = False
        try:
            self._conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in headers.items():
                self._conn.putheader(name, value)
            if payload is not None:
                self._conn.putheader("Content-Length", str(len(payload)))
            self._conn.endheaders(payload)
            sent = True
            response = self._conn.getresponse()
            data = response.read()
        except TimeoutError as exc:
            raise _Dropped(
                f"timeout after {self.timeout:g} s ({exc})", sent=True, timed_out=True
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            # A keep-alive connection the server closed fails on send or on the first read;
            # only a failure before the request left counts as "not sent".
            raise _Dropped(f"{type(exc).__name__}: {exc}", sent=sent) from None
        self._last_used = self._clock()
        self.stats.received_bytes += len(data)
        if response.will_close:
            # The server will close after this answer: the session ends with it.
            self._conn.close()
            self._conn, self._authenticated = None, False
        if response.status == 403:
            raise _Forbidden()
        if response.status != 200:
            error = (
                TransientGatewayError
                if response.status >= 500 or response.status == 429
                else PermanentGatewayError
            )
            if response.status >= 500 and path in NOT_IDEMPOTENT:
                error = UnknownOutcomeError
            raise error(f"{path}: HTTP {response.status}", gateway=GATEWAY, status=response.status)
        try:
            answer = json.loads(data)
        except ValueError:
            if path in NOT_IDEMPOTENT:
                raise UnknownOutcomeError(f"{path}: unreadable answer", gateway=GATEWAY) from None
            raise TransientGatewayError(f"{path}: unreadable answer", gateway=GATEWAY) from None
        if not isinstance(answer, dict):
            raise PermanentGatewayError(
                f"{path}: answer is not a JSON object", gateway=GATEWAY, code="bad_response"
            )
        return answer

    def _retcode(self, answer: Mapping[str, Any], *, path: str) -> int:
        try:
            return retcode_number(answer.get("retcode", ""))
        except ValueError:
            error = UnknownOutcomeError if path in NOT_IDEMPOTENT else PermanentGatewayError
            raise error(
                f"{path}: no readable retcode", gateway=GATEWAY, code="bad_response"
            ) from None

    def _checked(
        self,
        answer: dict,
        *,
        path: str,
        no_money: str = "insufficient_balance",
        write: bool = False,
    ) -> dict:
        code = self._retcode(answer, path=path)
        if code in (0, 1):  # 1: "ok; no data"
            return answer
        text = str(answer.get("retcode", "")).partition(" ")[2]
        raise retcode_error(code, text, path=path, no_money=no_money, write=write)

    def _offset_from(self, answer: Mapping[str, Any]) -> int:
        body = answer.get("answer") or {}
        stamp = body.get("Time") if isinstance(body, Mapping) else None
        if not stamp:
            return self.time_offset_seconds
        seconds = parse_int(str(stamp).split(" ", 1)[0])
        raw = seconds - time.time()
        return int(round(raw / OFFSET_STEP_SECONDS) * OFFSET_STEP_SECONDS)
