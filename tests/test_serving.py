"""Running it for real (issue 14): `make run` serves with gunicorn, answers 50 simultaneous
connections, holds a bounded number of database connections, and a database that refuses
connections answers 503 `database_unavailable` with Retry-After, never a 500 or the debug page.
"""

import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.db import connection, connections
from django.test import Client

from licensing.keys import key_generate

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKERS, THREADS = 2, 4  # what Procfile.dev gives a developer's machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile.dev").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"Procfile.dev has no {name} line")


@contextmanager
def make_run_web(tmp_path: Path, **env):
    """The web line of Procfile.dev, as `make run` starts it, on a free port; yields its URL
    once gunicorn listens (connections made before its workers are up wait in the backlog)."""
    port = free_port()
    environment = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "WEB_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "LICENSE_USAGE_SPOOL_DIR": str(tmp_path / "spool"),
        **env,
    }
    process = subprocess.Popen(
        ["bash", "-c", procfile_command("web")],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def drain():
        for line in process.stderr:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        seen = []
        while True:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError("the web process never listened:\n" + "".join(seen)) from None
            seen.append(line)
            if f"Listening at: http://127.0.0.1:{port}" in line:
                break
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# Each simultaneous client asks one of these: the probes, the admin's login page and its CSS,
# and an API endpoint that reads the database.
CALLS = [
    ("GET", "/healthz", None, 200),
    ("GET", "/readyz", None, 200),
    ("GET", "/admin/login/", None, 200),
    ("GET", "/static/admin/css/base.css", None, 200),
    # A well-formed key nobody was issued: 200 `NOT_FOUND`, after a read of the license table.
    ("POST", "/api/v1/licenses/validate/", {"license_key": key_generate()}, 200),
]


def fire_at_once(base: str, clients: int) -> list:
    """`clients` connections opened and sent together; the status each got (or its error)."""
    start = threading.Barrier(clients)
    answers: list = [None] * clients

    def one(n):
        method, path, body, _ = CALLS[n % len(CALLS)]
        start.wait(timeout=30)
        try:
            answers[n] = requests.request(method, base + path, json=body, timeout=60).status_code
        except requests.RequestException as exc:
            answers[n] = type(exc).__name__

    threads = [threading.Thread(target=one, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def expected(clients: int) -> list:
    return [CALLS[n % len(CALLS)][3] for n in range(clients)]


def test_make_run_serves_with_gunicorn_not_the_development_server():
    command = shlex.split(procfile_command("web").rsplit("exec ", 1)[-1])
    assert command[:2] == ["gunicorn", "config.wsgi:application"]
    assert "runserver" not in procfile_command("web")


def test_make_run_answers_50_simultaneous_connections_on_sqlite(tmp_path):
    database = f"sqlite:///{tmp_path / 'brokerdesk.sqlite3'}"
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr

    with make_run_web(tmp_path, DATABASE_URL=database) as base:
        answers = fire_at_once(base, 50)
        css = requests.get(base + "/static/admin/css/base.css", timeout=30)

    assert answers == expected(50)  # every one answered, none dropped, none a 5xx
    assert css.headers["Content-Type"].startswith("text/css")  # the admin has its styles
    assert b".module" in css.content


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_50_simultaneous_requests_hold_at_most_one_connection_per_thread(
    tmp_path,
):
    db = connection.settings_dict
    tag = f"brokerdesk-serving-{os.getpid()}"  # marks the web process's connections
    auth = quote(db["USER"] or "", safe="") + (
        ":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else ""
    )
    database = (
        f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        f"?application_name={tag}"
    )

    def held() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [tag]
            )
            return cursor.fetchone()[0]

    with make_run_web(tmp_path, DATABASE_URL=database) as base:
        first = fire_at_once(base, 50)
        second = fire_at_once(base, 50)
        # Kept for DB_CONN_MAX_AGE to be reused, never more than the threads serving.
        connections_held = held()

    assert first == expected(50)
    assert second == expected(50)
    assert 1 <= connections_held <= WORKERS * THREADS


# --- A database that refuses connections ------------------------------------------------------

# Run in a process of its own whose DATABASE_URL names a port nothing listens on: every
# connection attempt is refused, as when PostgreSQL is down or out of connection slots.
REFUSED_PROBE = """
import json
import django
django.setup()
from django.test import Client, override_settings

seen = {}
for debug in (True, False):
    with override_settings(DEBUG=debug):
        client = Client(raise_request_exception=False)
        client.cookies["sessionid"] = "s" * 32  # a signed-in staff member's browser
        answers = {
            "api": client.post(
                "/api/v1/auth/token/",
                {"email": "staff@example.com", "password": "right-horse-battery"},
                content_type="application/json",
            ),
            "admin": client.get("/admin/"),
            "admin login": client.post(
                "/admin/login/", {"username": "staff@example.com", "password": "x"}
            ),
            "readyz": client.get("/readyz"),
        }
        for name, answer in answers.items():
            seen[f"{name}, DEBUG {debug}"] = {
                "status": answer.status_code,
                "type": answer.headers.get("Content-Type"),
                "retry_after": answer.headers.get("Retry-After"),
                "body": answer.content.decode()[:2000],
            }
print(json.dumps(seen))
"""


def test_a_database_that_refuses_connections_answers_503_with_a_code(tmp_path):
    refused_port = free_port()  # bound then released: nothing listens there now
    result = subprocess.run(
        [sys.executable, "-c", REFUSED_PROBE],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{refused_port}/brokerdesk",
            "LICENSE_USAGE_SPOOL_DIR": str(tmp_path / "spool"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    for name, answer in seen.items():
        if name.startswith("readyz"):
            assert answer["status"] == 503
            assert json.loads(answer["body"])["checks"]["database"]["ok"] is False
            continue
        assert answer["status"] == 503, (name, answer["body"][:300])
        assert answer["type"] == "application/json", name
        assert answer["retry_after"] == "5", name
        body = json.loads(answer["body"])
        assert body["code"] == "database_unavailable", name
        assert "Traceback" not in answer["body"]
    assert "connection" in result.stderr.lower()  # the cause is logged for operators


class ReadsTheUserFirst:
    """A middleware that resolves the user before any view runs (as an audit or throttle
    middleware might): the session read happens outside every view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.seen_user = request.user.is_authenticated  # the read is the point
        return self.get_response(request)


def refuse(self):
    """The database gone under an open connection, as the driver says it, wrapped by Django."""
    with self.wrap_database_errors:
        raise self.Database.OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("debug", [True, False])
def test_a_database_error_raised_in_a_middleware_is_a_503_not_the_debug_page(
    debug, settings, monkeypatch, django_db_blocker
):
    settings.DEBUG = debug
    after = settings.MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[: after + 1],
        "tests.test_serving.ReadsTheUserFirst",
        *settings.MIDDLEWARE[after + 1 :],
    ]
    with django_db_blocker.unblock():
        monkeypatch.setattr(type(connections["default"]), "ensure_connection", refuse)
        client = Client(raise_request_exception=False)
        client.cookies["sessionid"] = "s" * 32
        answer = client.get("/healthz")

    assert answer.status_code == 503
    assert answer.json()["code"] == "database_unavailable"
    assert answer["Retry-After"] == "5"
    assert answer["X-Content-Type-Options"] == "nosniff"  # inner middleware's headers kept


def test_a_schema_mistake_on_sqlite_stays_a_500_it_is_a_bug_not_an_outage():
    from django.db import OperationalError

    from core.exceptions import is_database_unavailable

    assert not is_database_unavailable(OperationalError("no such table: accounts_user"))
    assert is_database_unavailable(OperationalError("database is locked"))
    assert is_database_unavailable(OperationalError("connection to server failed: refused"))
