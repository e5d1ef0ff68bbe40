"""`make run` as a newcomer runs it: web, worker and beat as separate processes on the embedded
defaults (and on PostgreSQL + Redis when this run has them). Found when it was tried live:
the dashboard said "Last monitor sweep: never" forever (the sweep record lived in each
process's memory), and with `PORT=8080 make run` every one-time link said :8000.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
STARTUP_SECONDS = 240  # a bound on a fresh machine's migrate + collectstatic, not a speed claim
SWEEP_SECONDS = 60  # a bound for the first sweep to show: the real delay is measured by hand
REFILL_SECONDS = 180  # a bound for the pool's first refill: beat's first minute, then user/add


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MakeRun:
    def __init__(self, tmp_path: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "make-run.log"
        environment = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "CACHE_DIR", "PUBLIC_BASE_URL")
        }
        environment.update(
            VAR_DIR=str(tmp_path / "var"),
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
            **env,
        )
        self.environment = environment
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={self.port}", f"VENV={VENV}"],
            cwd=ROOT,
            env=environment,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_web(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"make run ended:\n{self.output()[-4000:]}"
            try:
                if requests.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.5)  # polling a starting server, not waiting for time
        raise AssertionError(f"web never answered:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C, as a developer stops it
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def admin_session(url: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{url}/admin/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{url}/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": token,
            "username": "admin@brokerdesk.local",
            "password": "admin-local-123",
            "next": "/admin/",
        },
        headers={"Referer": f"{url}/admin/login/"},
        timeout=10,
    )
    assert answer.status_code == 200 and 'id="staff-dashboard"' in answer.text, answer.text[:500]
    return session


def last_sweep_tile(session: requests.Session, url: str) -> str:
    page = session.get(f"{url}/admin/", timeout=10).text
    tile = re.search(
        r'id="tile-monitor_last_sweep".*?<p class="bd-value">(.*?)</p>', page, re.DOTALL
    )
    assert tile, "the dashboard has no Last monitor sweep tile"
    return unescape(re.sub(r"<[^>]+>", "", tile.group(1))).strip()


def api_token(url: str) -> str:
    answer = requests.post(
        f"{url}/api/v1/auth/token/",
        json={"email": "admin@brokerdesk.local", "password": "admin-local-123"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access"]


def check_make_run(tmp_path: Path, *, processes=("web", "worker", "monitor", "beat"), **env):
    run = MakeRun(tmp_path, **env)
    try:
        run.wait_for_web()
        if "mt5" in processes:
            check_web_api_path(run, env)

        # The dashboard, read by the web process, shows the worker's sweeps.
        session = admin_session(run.url)
        deadline = time.monotonic() + SWEEP_SECONDS
        shown = last_sweep_tile(session, run.url)
        while shown == "never" and time.monotonic() < deadline:
            time.sleep(0.5)  # polling the page for the worker's first sweep
            shown = last_sweep_tile(session, run.url)
        assert shown != "never", f"no sweep shown:\n{run.output()[-4000:]}"
        assert re.fullmatch(r"\d+ s ago", shown), f"the last sweep is old: {shown}"

        # A one-time link points at the port `make run` serves on.
        answer = requests.post(
            f"{run.url}/api/v1/admin/users/",
            json={
                "account_id": "make-run-check",
                "license_type": "TRIAL",
                "delivery_method": "api",
            },
            headers={"Authorization": f"Bearer {api_token(run.url)}"},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        link = answer.json()["delivery"]["link"]
        assert link.startswith(f"{run.url}/d/"), link
        assert requests.get(link, timeout=10).status_code == 200
        # Links made by the other processes (a queued activation's, by the worker) too: honcho
        # gives each its own PORT, so each must be told the web's address (found by a
        # newcomer: the worker's links pointed at PORT+100).
        told = run_environments(run, "PUBLIC_BASE_URL")
        assert len(told) >= len(processes) and set(told.values()) == {run.url}, told
    finally:
        run.stop()
    output = run.output()
    for name in processes:
        assert re.search(rf"^\S* ?{name}\.1 +\| ", output, re.MULTILINE), f"{name} never ran"
    assert "Traceback" not in output, output[output.index("Traceback") - 2000 :][:6000]


def run_environments(run: MakeRun, name: str) -> dict[int, str]:
    """`name` in the environment of every process of the run that has it set, by pid."""
    found = {}
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        try:
            if os.getsid(pid) != run.process.pid:
                continue
            variables = dict(
                item.split(b"=", 1) for item in environ.read_bytes().split(b"\0") if b"=" in item
            )
        except (OSError, ProcessLookupError):
            continue  # ended meanwhile, or not ours to read
        if name.encode() in variables:
            found[pid] = variables[name.encode()].decode()
    return found


def check_web_api_path(run: MakeRun, env: dict[str, str]) -> None:
    """A deposit made on the stand-in through the Web API (as a second manager session)
    reaches the product's monitor, which reads the server through the Web API too."""
    from decimal import Decimal

    from gateways.mt5.webapi.gateway import WebApiMT5Gateway

    gateway = WebApiMT5Gateway(
        url=f"http://127.0.0.1:{env['MT5_WEBAPI_PORT']}",
        login=env["MT5_MANAGER_LOGIN"],
        password=env["MT5_MANAGER_PASSWORD"],
    )
    headers = {"Authorization": f"Bearer {api_token(run.url)}"}
    account = f"{run.url}/api/v1/monitoring/accounts/10002/"
    deadline = time.monotonic() + SWEEP_SECONDS
    while True:  # the monitor registers the stand-in's logins at its first sweeps
        answer = requests.get(account, headers=headers, timeout=10)
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # polling the product for the monitor's first sweep
    assert answer.status_code == 200, f"{answer.text}\n{run.output()[-4000:]}"
    before = Decimal(answer.json()["balance"])
    gateway.post_balance(10002, Decimal("250.00"), comment="make run check")
    while Decimal(answer.json()["balance"]) != before + 250 and time.monotonic() < deadline:
        time.sleep(0.5)  # polling the product for the sweep that sees the deposit
        answer = requests.get(account, headers=headers, timeout=10)
    assert Decimal(answer.json()["balance"]) == before + 250, run.output()[-4000:]
    # The monitor read it through the stand-in: the product's own sessions are in its journal
    # (the test's session is one; the product's monitor, worker and web make more).
    sessions = re.findall(r"^\S* ?mt5\.1 +\|.*manager \d+ authorized from", run.output(), re.M)
    assert len(sessions) >= 2, run.output()[-4000:]

    # The demo pool fills itself with accounts made by user/add on the demo server's stand-in.
    status = f"{run.url}/api/v1/demo/pool/status/"
    deadline = time.monotonic() + REFILL_SECONDS
    answer = requests.get(status, headers=headers, timeout=10)
    while answer.json()["available"] < 1 and time.monotonic() < deadline:
        time.sleep(0.5)  # polling the product for the pool's first refill
        answer = requests.get(status, headers=headers, timeout=10)
    assert answer.json()["available"] >= 1, f"{answer.text}\n{run.output()[-4000:]}"
    journal = rf"^\S* ?mt5demo\.1 +\|.*manager {env['MT5_DEMO_MANAGER_LOGIN']} authorized"
    assert re.search(journal, run.output(), re.M), run.output()[-4000:]

    # A press pass is handed out from it, its password changed on the demo server by
    # user/change_password, and then again by a resend. On SQLite the demo stand-in shares
    # the database file: a transaction held across that call would hold the one write lock
    # the stand-in needs (found by a newcomer: the activation timed out and stayed queued).
    activate = requests.post(
        f"{run.url}/api/v1/demo/press-pass/activate/",
        json={"user_id": "make-run", "real_name": "Jane Doe", "delivery_method": "api"},
        headers={**headers, "Idempotency-Key": os.urandom(16).hex()},
        timeout=60,
    )
    assert activate.status_code == 201, f"{activate.text}\n{run.output()[-4000:]}"
    assert requests.get(activate.json()["delivery"]["link"], timeout=10).status_code == 200
    resend = requests.post(
        f"{run.url}/api/v1/demo/accounts/resend-credentials/",
        json={"user_id": "make-run", "delivery_method": "api", "contact_info": ""},
        headers=headers,
        timeout=60,
    )
    assert resend.status_code == 201, f"{resend.text}\n{run.output()[-4000:]}"

    # The manager password reaches the processes through their environment: no command line
    # (which every user can read in `ps`) carries it.
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:
            continue  # the process ended meanwhile
        assert env["MT5_MANAGER_PASSWORD"].encode() not in argv, cmdline

    # Beside the run, the operator's check reaches both stand-ins with the run's settings.
    check = subprocess.run(
        ["make", "--no-print-directory", "mt5-check", f"PORT={run.port}", f"VENV={VENV}"],
        cwd=ROOT,
        env=run.environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("server check passed") == 2, check.stdout


def test_make_run_on_the_embedded_defaults_shows_sweeps_and_links_to_its_port(tmp_path):
    check_make_run(tmp_path)


def test_make_run_with_the_mt5_web_api_stand_in_sees_a_deposit_made_through_it(tmp_path):
    """`make run MT5=webapi`: two more processes, the live and the demo server's stand-ins, and
    the product speaks the Web API to both; the live manager's password is the run's own (here
    the test's, to act as a second manager), the demo manager's made by `make`."""
    check_make_run(
        tmp_path,
        processes=("web", "worker", "monitor", "beat", "mt5", "mt5demo"),
        MT5="webapi",
        MT5_WEBAPI_PORT=str(free_port()),
        MT5_MANAGER_LOGIN="1000",
        MT5_MANAGER_PASSWORD="make-run-" + os.urandom(6).hex(),
        MT5_DEMO_PORT=str(free_port()),
        MT5_DEMO_MANAGER_LOGIN="2000",
    )


@pytest.mark.postgres
def test_make_run_on_postgresql_and_redis_shows_sweeps_and_links_to_its_port(tmp_path):
    """The same newcomer path with REDIS_URL (kombu's Redis transport, the Redis cache) and
    PostgreSQL: a database of its own, dropped afterwards."""
    import psycopg
    import redis

    redis_url = os.environ.get("REDIS_URL")
    assert redis_url, "this run has PostgreSQL, so CI gives it Redis too"
    own_redis = redis_url.rsplit("/", 1)[0] + "/10"
    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    name = f"make_run_{os.getpid()}"

    def admin(sql: str) -> None:
        with psycopg.connect(
            f"{server}/postgres".replace("postgres://", "postgresql://", 1), autocommit=True
        ) as connection:
            connection.execute(sql)

    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name}")
    redis.Redis.from_url(own_redis).flushdb()
    try:
        check_make_run(tmp_path, DATABASE_URL=f"{server}/{name}", REDIS_URL=own_redis)
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        redis.Redis.from_url(own_redis).flushdb()
