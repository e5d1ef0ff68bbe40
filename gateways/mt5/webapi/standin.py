"""A faithful stand-in for MetaQuotes' MT5 Manager Web API (spec mt5-webapi.md, section 9),
serving the simulated MT5 server's state in the database.

HTTP/1.1 keep-alive; **the session is the TCP connection**: auth state lives on the handler
instance, so a new connection starts unauthenticated. Before auth every `/api/*` call but the
handshake is HTTP 403; a wrong `srv_rand_answer`, or one later than the handshake window
(10 s) after `auth/start`, is 403 too and forgets the start. A connection idle for 180 s is
dropped. Retcode errors are HTTP 200 with `"<code> <text>"`; every scalar is a string.

Dealer requests are queued and executed by one dealer thread; their results wait, per
connection, for `dealer/get_request_result`.

With `server="demo"` it is a second server, the broker's demo server: it serves only the
demo accounts (`SimulatedMT5Account.server`), hands out logins from its own range, has the
demo pool's group `MT5_DEMO_GROUP`, and reads its own knobs (`mt5_webapi_demo`).

The admin's simulator knobs for server `mt5_webapi` inject faults on authenticated calls:
`forbidden_rate` (403, the session forgotten), `error_rate` (answered with `fault_retcode`
and nothing done), `drop_rate` (the work is done, then the connection closes unanswered) and
`latency_ms` (the work is done, then the answer waits). For a test that needs one fault on
one call, `fail_next(path, fault)` plans it; `expire_sessions()` and `drop_connections()` do
to every open connection what an idle timeout or a network cut does.

`denied_rights` plays a manager whose config lacks some of the rights of the spec's section 8
(the names of `client.RIGHTS`, e.g. "Accountant"): every endpoint needing one answers retcode
8, "Not enough permissions", and does nothing.
"""

import contextlib
import itertools
import json
import logging
import os
import queue
import random
import secrets
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import close_old_connections
from django.db import connection as db_connection

from gateways.simulation import load_knobs

from .client import RIGHTS
from .handshake import pw_hash, rand_answer
from .standin_api import ENDPOINTS, POST_ONLY, Call, dealer_check, execute_dealer_request
from .standin_wire import RawRows, RetcodeError, as_int, retcode, stringify, unescape

logger = logging.getLogger(__name__)

KNOBS_SERVER = "mt5_webapi"
KNOBS_SERVERS = {"live": KNOBS_SERVER, "demo": "mt5_webapi_demo"}
VERSION_ACCESS = "1290"
VERSION_TRADE = "1290"
MIN_CLIENT_VERSION = 484
HANDSHAKE_WINDOW_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 180.0
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_QUEUED_DEALER_REQUESTS = 128
DEALER_PATHS = ("/api/dealer/send_request", "/api/dealer/get_request_result")


class _Session:
    """What one connection knows: its handshake and its dealer subscriptions."""

    def __init__(self):
        self.authenticated = False
        self.srv_rand: str | None = None
        self.started_at = 0.0
        self.results: dict[int, list] = {}  # dealer request id -> events so far
        self.lock = threading.Lock()

    def forget(self) -> None:
        self.authenticated = False
        self.srv_rand = None


class MT5WebAPIStandIn:
    """The stand-in server. `serve_forever()` blocks; `start()` serves on a daemon thread.

    `srv_rand` (a callable returning 32 hex characters) and `clock` (seconds, default
    `time.time`, so time-machine moves it) are hooks for tests.
    `time_offset_seconds` puts the trade server that many seconds ahead of UTC.
    `denied_rights` names manager rights the manager lacks (retcode 8 where they are needed).
    `fail_next()` puts one fault on the next calls of one endpoint (tests);
    `max_accounts` makes user/add answer 3002 (logins range exhausted) past that many accounts.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        manager_login: int | str | None = None,
        manager_password: str | None = None,
        tls: bool = False,
        time_offset_seconds: int | None = None,
        groups: tuple[str, ...] | list[str] = (),
        server_name: str | None = None,
        denied_rights: tuple[str, ...] | list[str] | set[str] = (),
        server: str = "live",
        idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS,
        handshake_window_seconds: float = HANDSHAKE_WINDOW_SECONDS,
        srv_rand: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        login = settings.MT5_MANAGER_LOGIN if manager_login is None else manager_login
        password = settings.MT5_MANAGER_PASSWORD if manager_password is None else manager_password
        self.manager_login = str(login or "").strip()
        self.manager_password = password or ""
        self._hash = pw_hash(self.manager_password)
        self.time_offset_seconds = int(time_offset_seconds or 0)
        if server not in KNOBS_SERVERS:
            raise ValueError(f"server is one of {', '.join(KNOBS_SERVERS)}, not {server!r}")
        self.server = server
        self.knobs_server = KNOBS_SERVERS[server]
        # The demo pool's group exists on a fresh demo server before any account is in it.
        demo_group = getattr(settings, "MT5_DEMO_GROUP", "") if server == "demo" else ""
        self.groups = tuple(groups) + ((demo_group,) if demo_group else ())
        self.max_accounts: int | None = None  # the login range's size, for tests of 3002
        self.server_name = server_name or getattr(settings, "MT5_SERVER", "Brokerdesk-Sim")
        unknown = set(denied_rights) - set(RIGHTS.values())
        if unknown:
            raise ValueError(f"unknown manager rights: {sorted(unknown)}")
        self.denied_rights = frozenset(denied_rights)
        self.idle_timeout_seconds = idle_timeout_seconds
        self.handshake_window_seconds = handshake_window_seconds
        self.new_srv_rand = srv_rand or (lambda: secrets.token_hex(16))
        self.clock = clock
        self.certificate_pem: bytes | None = None
        self.cafile: str | None = None
        self._tls_folder: str | None = None
        self._dealer_ids = itertools.count(1)
        self._dealer_queue: queue.Queue = queue.Queue()
        self._queued = 0
        self._queued_lock = threading.Lock()
        self.httpd = _HTTPServer((host, port), _handler_class(self))
        self.httpd.daemon_threads = True
        if tls:
            self._wrap_tls(host)
        bound_host, bound_port = self.httpd.server_address[:2]
        assert isinstance(bound_host, str)  # an IP socket's address
        scheme = "https" if tls else "http"
        shown = "localhost" if tls and bound_host in ("127.0.0.1", "::1") else bound_host
        self.url = f"{scheme}://{shown}:{bound_port}"
        self._threads: list[threading.Thread] = []
        self._serving = False
        self._open: set = set()  # the handlers of open connections, closed by stop()
        self._open_lock = threading.Lock()
        self._planned: dict[str, list[tuple[str, float]]] = {}
        self._planned_lock = threading.Lock()
        # What the pool tests and the benchmark read: connections open at once at most, and
        # handshakes that succeeded.
        self.peak_connections = 0
        self.logins = 0
        self._dealer = threading.Thread(target=self._dealer_loop, name="standin-dealer")
        self._dealer.daemon = True
        self._dealer.start()

    # --- Lifecycle ---------------------------------------------------------------------------

    def serve_forever(self) -> None:
        self._serving = True
        self.httpd.serve_forever(poll_interval=0.05)

    def start(self) -> "MT5WebAPIStandIn":
        self._serving = True
        thread = threading.Thread(target=self.serve_forever, name="standin-http", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._tls_folder:
            shutil.rmtree(self._tls_folder, ignore_errors=True)
        if self._serving:  # shutdown() waits for a serve_forever() that must have started
            self.httpd.shutdown()
        self.httpd.server_close()
        with self._open_lock:
            handlers = list(self._open)
        for handler in handlers:
            handler.hang_up()
        self._dealer_queue.put(None)
        self._dealer.join(timeout=5)

    # --- Test hooks: one fault, on purpose -----------------------------------------------------

    def fail_next(self, path: str, fault: str, *, seconds: float = 0.0, times: int = 1) -> None:
        """The next `times` authenticated calls of `path` meet `fault`: "drop" (the work is
        done, then the connection closes unanswered), "slow" (the work is done, the answer
        waits `seconds`), "late" (the server takes `seconds` before it does the work, as a
        loaded one does: a client that gave up meanwhile may look and not find it yet),
        "forbidden" (HTTP 403 before anything is done, the session forgotten, as after it
        expired) or "busy" (retcode 9, nothing done)."""
        if fault not in ("drop", "slow", "late", "forbidden", "busy"):
            raise ValueError(f"unknown fault {fault!r}")
        with self._planned_lock:
            self._planned.setdefault(path, []).extend([(fault, float(seconds))] * times)

    def _take_planned(self, path: str) -> tuple[str, float] | None:
        with self._planned_lock:
            planned = self._planned.get(path)
            return planned.pop(0) if planned else None

    def expire_sessions(self) -> None:
        """Forget every open connection's session, as the server does to one that sat idle:
        the connection stays up and its next call is HTTP 403."""
        with self._open_lock:
            handlers = list(self._open)
        for handler in handlers:
            handler.session.forget()

    def drop_connections(self) -> None:
        """Cut every open connection, as a network fault or the 180 s idle timeout does."""
        with self._open_lock:
            handlers = list(self._open)
        for handler in handlers:
            handler.hang_up()

    def __enter__(self) -> "MT5WebAPIStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wrap_tls(self, host: str) -> None:
        from .standin_tls import self_signed

        certificate = self_signed(host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.certfile, certificate.keyfile)
        # The key is in the context now: it need not wait on disk; the certificate stays, for
        # clients to trust, until stop() removes its folder.
        os.unlink(certificate.keyfile)
        self._tls_folder = os.path.dirname(certificate.certfile)
        self.certificate_pem = certificate.pem
        self.cafile = certificate.certfile
        # The handshake runs in the connection's thread, not in accept().
        self.httpd.socket = context.wrap_socket(
            self.httpd.socket, server_side=True, do_handshake_on_connect=False
        )

    # --- Handshake ---------------------------------------------------------------------------

    def auth_start(self, session: _Session, query: dict[str, str]) -> dict:
        session.forget()
        try:
            version = as_int(query.get("version"), name="version")
        except RetcodeError:
            version = 0
        agent = query.get("agent") or ""
        login = query.get("login") or ""
        if (
            version < MIN_CLIENT_VERSION
            or not agent
            or " " in agent
            or not login.isdigit()
            or query.get("type") != "manager"
        ):
            raise RetcodeError(3)
        if not self.manager_login or login != self.manager_login:
            raise RetcodeError(1001)
        session.srv_rand = self.new_srv_rand().lower()
        session.started_at = self.clock()
        return {"version_access": VERSION_ACCESS, "srv_rand": session.srv_rand}

    def auth_answer(self, session: _Session, query: dict[str, str]) -> dict | None:
        """The answer's fields, or None for HTTP 403 (the start is forgotten)."""
        srv_rand, started = session.srv_rand, session.started_at
        session.forget()
        if srv_rand is None or self.clock() - started > self.handshake_window_seconds:
            return None
        answer = (query.get("srv_rand_answer") or "").lower()
        if not secrets.compare_digest(answer, rand_answer(self._hash, srv_rand)):
            return None
        cli_rand = query.get("cli_rand") or ""
        try:
            if len(bytes.fromhex(cli_rand)) != 16:
                raise ValueError
        except ValueError:
            raise RetcodeError(3) from None
        session.authenticated = True
        with self._open_lock:
            self.logins += 1
        return {
            "version_access": VERSION_ACCESS,
            "version_trade": VERSION_TRADE,
            "cli_rand_answer": rand_answer(self._hash, cli_rand),
        }

    # --- Dealer ------------------------------------------------------------------------------

    def send_request(self, session: _Session, request: dict) -> dict:
        request = dealer_check(request)
        with self._queued_lock:
            if self._queued >= MAX_QUEUED_DEALER_REQUESTS:
                raise RetcodeError(10024)
            self._queued += 1
        request_id = next(self._dealer_ids)
        with session.lock:
            session.results[request_id] = []
        self._dealer_queue.put((session, request_id, request))
        return {"answer": {"ID": str(request_id)}}

    def request_results(self, session: _Session, ids: list[int] | None) -> dict:
        """Events per id; a final one is handed out once and its subscription deleted."""
        with session.lock:
            wanted = list(session.results) if ids is None else ids
            events = {str(i): list(session.results.get(i, [])) for i in wanted}
            for request_id in wanted:
                if session.results.get(request_id):
                    del session.results[request_id]
        return {**events, "answer": events}

    def _dealer_loop(self) -> None:
        while True:
            item = self._dealer_queue.get()
            if item is None:
                db_connection.close()
                return
            session, request_id, request = item
            try:
                close_old_connections()
                code, deal = execute_dealer_request(request, self.server)
            except Exception:
                logger.exception("dealer request %s failed", request_id)
                code, deal = 10006, 0
            finally:
                with self._queued_lock:
                    self._queued -= 1
            confirm = {"ID": request_id, "Retcode": code, "DealID": deal, "Comment": ""}
            result = {**request, "ID": request_id, "ResultRetcode": code, "ResultDeal": deal}
            with session.lock:
                if request_id in session.results:
                    session.results[request_id] = stringify(
                        [{"result": confirm}, {"answer": result}]
                    )


class _HTTPServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that fails the TLS handshake or vanishes is its problem, not a traceback.
        logger.debug("connection from %s failed", client_address, exc_info=True)


def _handler_class(standin: MT5WebAPIStandIn):
    class Handler(_Handler):
        pass

    Handler.standin = standin
    Handler.timeout = standin.idle_timeout_seconds
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MT5WebAPIStandIn/1.0"
    # An answer leaves in two writes (headers, then body): with Nagle's algorithm on, the body
    # waited for the client's delayed ACK of the headers, 40 ms on every call of a keep-alive
    # session (measured: 48 ms a call, 5 ms with this), which no real access server adds.
    disable_nagle_algorithm = True
    standin: MT5WebAPIStandIn

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()  # here, on the connection's thread, not in accept()
        super().setup()
        self.session = _Session()
        with self.standin._open_lock:
            self.standin._open.add(self)
            self.standin.peak_connections = max(
                self.standin.peak_connections, len(self.standin._open)
            )

    def hang_up(self) -> None:
        """Close the connection from outside its thread (the server stops)."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.standin._open_lock:
                self.standin._open.discard(self)
            with self.session.lock:
                self.session.results.clear()  # subscriptions die with the connection
            db_connection.close()

    def log_message(self, format, *args):
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = {
            name: unescape(values[-1])
            for name, values in parse_qs(parts.query, keep_blank_values=True).items()
        }
        try:
            body = self._body()
        except ValueError as exc:
            if "JSON" not in str(exc):  # the body was not read: the stream is out of step
                self.close_connection = True
            self._reply(413 if "large" in str(exc) else 200, {"retcode": retcode(3)})
            return
        if not path.startswith("/api/"):
            self._reply(404, None)
            return
        try:
            self._dispatch(path, query, body)
        except RetcodeError as exc:
            self._reply(200, {"retcode": retcode(exc.code)})
        except Exception:
            logger.exception("stand-in failed on %s", path)
            self._reply(500, {"retcode": retcode(2)})

    def _body(self):
        length = self.headers.get("Content-Length")
        if not length:
            return None
        try:
            size = int(length)
        except ValueError:
            raise ValueError("bad length") from None
        if size > MAX_BODY_BYTES or size < 0:
            self.close_connection = True
            raise ValueError("body too large")
        raw = self.rfile.read(size)
        if not raw.strip():
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError("body is not JSON") from None

    def _dispatch(self, path: str, query: dict[str, str], body) -> None:
        standin, session = self.standin, self.session
        close_old_connections()
        if path == "/api/auth/start":
            self._answer(standin.auth_start(session, query))
            return
        if path == "/api/auth/answer":
            answered = standin.auth_answer(session, query)
            # The server's journal: who connected, from where (a real MT5 logs the same).
            if answered is None:
                logger.warning("manager refused from %s", self.address_string())
                self._reply(403, None)
            else:
                logger.info(
                    "manager %s authorized from %s", standin.manager_login, self.address_string()
                )
                self._answer(answered)
            return
        if not session.authenticated:
            self._reply(403, None)
            return
        if path == "/api/quit":
            session.forget()
            self.close_connection = True
            self._answer({})
            return
        endpoint = ENDPOINTS.get(path)
        if endpoint is None and path not in (
            "/api/dealer/send_request",
            "/api/dealer/get_request_result",
        ):
            self._reply(404, {"retcode": retcode(3)})
            return
        if path in POST_ONLY and self.command != "POST":
            self._reply(405, {"retcode": retcode(3)}, allow="POST")
            return
        if RIGHTS.get(path) in standin.denied_rights:
            raise RetcodeError(8)  # the manager's config lacks the right: nothing is done
        planned = standin._take_planned(path)
        if planned is not None and planned[0] == "forbidden":
            session.forget()
            self._reply(403, None)
            return
        if planned is not None and planned[0] == "busy":
            raise RetcodeError(9)
        if planned is not None and planned[0] == "late":
            time.sleep(planned[1])
        knobs = load_knobs(standin.knobs_server)
        if knobs is not None and path != "/api/test/access":
            if _happens(knobs.forbidden_rate):
                session.forget()
                self._reply(403, None)
                return
            if _happens(knobs.error_rate):
                raise RetcodeError(int(knobs.fault_retcode))
        if path == "/api/dealer/send_request":
            extra = standin.send_request(session, body)
        elif path == "/api/dealer/get_request_result":
            raw = query.get("id") or (body.get("id") if isinstance(body, dict) else None)
            ids = None if raw in (None, "") else [as_int(i) for i in str(raw).split(",") if i]
            extra = standin.request_results(session, ids)
        else:
            assert endpoint is not None  # a path without one was refused with a 404 above
            extra = endpoint(Call(query, body, standin.time_offset_seconds, standin, session))
        if planned is not None and planned[0] == "drop":
            self.close_connection = True
            return
        if planned is not None and planned[0] == "slow":
            time.sleep(planned[1])
        if knobs is not None and path != "/api/test/access":
            if _happens(knobs.drop_rate):
                self.close_connection = True  # done, but the answer never leaves
                return
            if knobs.latency_ms:
                time.sleep(knobs.latency_ms / 1000)
        self._answer(extra)

    def _answer(self, fields: dict) -> None:
        self._reply(200, {"retcode": retcode(0), **stringify(fields)})

    @staticmethod
    def _encode(payload: dict) -> bytes:
        if not any(type(value) is RawRows for value in payload.values()):
            return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        parts = []
        for key, value in payload.items():
            if type(value) is RawRows:
                text = "[" + ",".join(value) + "]"
            else:
                text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            parts.append(f"{json.dumps(key)}:{text}")
        return ("{" + ",".join(parts) + "}").encode()

    def _reply(self, status: int, payload, *, allow: str = "") -> None:
        data = b"" if payload is None else self._encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if allow:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def _happens(rate) -> bool:
    return bool(rate) and random.random() < float(rate)
