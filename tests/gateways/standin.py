"""A stand-in outside server on a real socket, for the HTTP clients' contract tests.

Subclass `Route`-style handlers by giving `StandIn` a function `(method, path, query, headers,
body) -> (status, json_body)`; the server runs on 127.0.0.1 on a free port in a thread and
stops when the test ends.
"""

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[str, str, dict[str, list[str]], dict[str, str], Any], tuple[int, Any]]


class StandIn:
    def __init__(self, handle: Handler):
        self.handle = handle
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        outer = self

        class _RequestHandler(BaseHTTPRequestHandler):
            def _serve(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                outer.requests.append((self.command, parts.path))
                status, payload = outer.handle(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers), body
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> "StandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
