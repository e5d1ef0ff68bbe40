"""`manage.py bench_license`: license validation over HTTP against a trivial view.

Runs in a scratch PostgreSQL database made for the run and dropped after it (the test
runner's way). Issues licenses (valid, expired, suspended) and makes well-formed unknown keys,
starts a real server (gunicorn, `--workers` processes of `--threads` threads, settings
`bench.license_settings`: the project's plus a trivial DRF view returning constant JSON,
DEBUG off) on the scratch database and `REDIS_URL`, with the validation rate limits raised so
the limiter (still consulted on every call) does not cap the load. A second process
(`licensing/bench_client.py`: threads on keep-alive connections) then posts for `--seconds`
to the validation endpoint with the keys in turn, and for as long to the trivial view.

Database writes are read from PostgreSQL's own counters (`pg_stat_user_tables`,
`pg_stat_database`) before and after the validation phase, after letting the server's
connections report (PostgreSQL publishes an idle backend's counters within 10 s). Beat is not
running, so the usage-log flush (which writes the queued calls in bulk, off the request path)
is not counted: the queued calls are reported, and removed from Redis at the end.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

RAISED_RATE = "100000000/min"
RATE_SETTINGS = (
    "LICENSE_VALIDATE_RATE_LIMIT_PER_KEY",
    "LICENSE_VALIDATE_RATE_LIMIT_PER_IP",
    "LICENSE_PUBLIC_RATE_LIMIT",
)
VALIDATE_PATH = "/api/v1/licenses/validate/"
PUBLIC_KEY_PATH = "/api/v1/licenses/public-key/"
CLIENT = "licensing.bench_client"  # run as a module: licensing/ must not be on sys.path


class Command(BaseCommand):
    help = "Benchmark license validation over HTTP (gunicorn) against a trivial DRF view."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=20.0, help="Per phase.")
        parser.add_argument("--licenses", type=int, default=100, help="Of each kind.")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--threads", type=int, default=2, help="gunicorn threads/worker.")
        parser.add_argument("--concurrency", type=int, default=4, help="Client threads.")
        parser.add_argument("--warmup", type=float, default=2.0)
        parser.add_argument(
            "--stats-wait",
            type=float,
            default=11.0,
            help="Seconds to let the server's idle connections publish their counters.",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_license needs PostgreSQL: set DATABASE_URL.")
        if not os.environ.get("DATABASE_URL"):
            raise CommandError("bench_license passes DATABASE_URL to its server: set it.")
        creation = connection.creation
        old_name = settings.DATABASES["default"]["NAME"]
        creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            self._run(**options)
        finally:
            connection.close()
            creation.destroy_test_db(old_name, verbosity=0)

    # --- the run ------------------------------------------------------------------------

    def _run(self, *, seconds, licenses, workers, threads, concurrency, warmup, stats_wait, **_):
        out = self.stdout.write
        db_name = connection.settings_dict["NAME"]
        started = time.perf_counter()
        keys = _issue(licenses)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # so autovacuum has no reason to analyze mid-run
        connection.close()  # our backend exits and publishes the inserts before the baseline
        built = time.perf_counter() - started

        port = _free_port()
        tmp = Path(tempfile.mkdtemp(prefix="bench-license-"))
        env = {
            **os.environ,
            "DATABASE_URL": _with_db_name(os.environ["DATABASE_URL"], db_name),
            "DJANGO_SETTINGS_MODULE": "bench.license_settings",
            "LICENSE_USAGE_SPOOL_DIR": str(tmp / "spool"),
            **dict.fromkeys(RATE_SETTINGS, RAISED_RATE),
        }
        redis_url = settings.REDIS_URL
        queue_before = _queue_len(redis_url)
        log = tmp / "gunicorn.log"
        server = _start_server(env, port, workers, threads, log)
        try:
            _wait_ready(server, port, log)
            bodies = _bodies(keys)
            out(
                f"license validation bench: gunicorn {workers} workers x {threads} threads on "
                f"127.0.0.1:{port}, PostgreSQL {db_name} (scratch), "
                f"{'Redis ' + _redacted(redis_url) if redis_url else 'no Redis (local memory)'}"
            )
            out(
                f"  {licenses} valid, {licenses} expired, {licenses} suspended licenses and "
                f"{licenses} unknown keys, issued in {built:.1f} s"
            )
            out(
                f"  client: 1 process, {concurrency} threads, keep-alive; {seconds:g} s per "
                f"phase after {warmup:g} s of warm-up"
            )
            out(
                f"  rate limits RAISED for the run (still checked on every call): "
                f"{', '.join(RATE_SETTINGS)} = {RAISED_RATE}"
            )
            out("  usage-log flush (beat) not running: calls stay queued during the run")
            trivial_path = "/" + _trivial_path()
            _load(port, VALIDATE_PATH, bodies, warmup, concurrency)
            _load(port, trivial_path, bodies, warmup, concurrency)

            time.sleep(stats_wait)
            before = _pg_counters(db_name)
            validation = _load(port, VALIDATE_PATH, bodies, seconds, concurrency)
            time.sleep(stats_wait)
            after = _pg_counters(db_name)
            trivial = _load(port, trivial_path, bodies, seconds, concurrency)
            signatures = _check_signatures(port, keys)
            queued = _queue_len(redis_url) - queue_before
        finally:
            _stop(server)
            _drop_queued(redis_url, queue_before)
            shutil.rmtree(tmp, ignore_errors=True)

        out("")
        v_rate, t_rate = _row(out, "validation", validation), _row(out, "trivial view", trivial)
        ratio = v_rate / t_rate if t_rate else 0.0
        v_p99 = _percentile(validation["latencies_ms"], 0.99)
        n = len(validation["latencies_ms"])
        delta = {k: after[k] - before[k] for k in before}
        per = delta["user_writes"] / n if n else float("nan")
        out("")
        out(f"  ratio            validation at {ratio:.0%} of the trivial view (target >= 60%)")
        out(f"  p99              validation {v_p99:.1f} ms (target < 25 ms)")
        out(
            f"  DB writes        {delta['user_writes']:,} row writes in the project's tables "
            f"({delta['db_writes']:,} database-wide, catalogs included) over {n:,} "
            f"validations: {per:.4f} per validation (target 0)"
        )
        out(
            f"  DB reads         {delta['license_scans']:,} scans of the license table: "
            f"{delta['license_scans'] / n if n else 0:.4f} per validation (cached snapshots)"
        )
        out(f"  usage log        {queued:,} calls queued in Redis for the bulk flush")
        out(f"  signatures       {signatures}")
        met = ratio >= 0.6 and v_p99 < 25 and delta["user_writes"] == 0
        out(f"  targets          {'all met' if met else 'NOT all met'}")


# --- set-up -------------------------------------------------------------------------------


def _issue(count: int) -> dict[str, list[str]]:
    from licensing.keys import key_generate
    from licensing.models import License
    from licensing.services import license_create, license_suspend

    keys: dict[str, list[str]] = {"VALID": [], "EXPIRED": [], "SUSPENDED": [], "NOT_FOUND": []}
    for i in range(count):
        _, key = license_create(account_id=f"BENCH-V{i}", license_type=License.Type.MONTHLY)
        keys["VALID"].append(key)
        _, key = license_create(
            account_id=f"BENCH-E{i}", license_type=License.Type.MONTHLY, duration_days=-1
        )
        keys["EXPIRED"].append(key)
        license, key = license_create(account_id=f"BENCH-S{i}", license_type=License.Type.ANNUAL)
        license_suspend(license=license, reason="bench")
        keys["SUSPENDED"].append(key)
        keys["NOT_FOUND"].append(key_generate())
    return keys


def _bodies(keys: dict[str, list[str]]) -> list[str]:
    """The keys of the four kinds in turn, each with its own nonce."""
    kinds = list(keys.values())
    return [
        json.dumps({"license_key": kind[i], "nonce": f"bench-{i}-{k}"})
        for i in range(len(kinds[0]))
        for k, kind in enumerate(kinds)
    ]


def _trivial_path() -> str:
    from bench.license_urls import TRIVIAL_PATH

    return TRIVIAL_PATH


def _with_db_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(parts.password, "***"))
    return urlunsplit(parts)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the server -----------------------------------------------------------------------------


def _start_server(env, port, workers, threads, log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as sink:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, cwd=settings.BASE_DIR, env=env, stdout=sink, stderr=subprocess.STDOUT
        )


def _wait_ready(server: subprocess.Popen, port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/" + _trivial_path()
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CommandError(f"gunicorn exited ({server.returncode}):\n{log.read_text()}")
        try:
            request = urllib.request.Request(url, data=b"{}", method="POST")
            request.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise CommandError(f"gunicorn did not answer in {timeout:g} s:\n{log.read_text()}")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- the load -------------------------------------------------------------------------------


def _load(port, path, bodies, seconds, threads) -> dict:
    job = {"port": port, "path": path, "bodies": bodies, "seconds": seconds, "threads": threads}
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-m", CLIENT],
        cwd=settings.BASE_DIR,
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise CommandError(f"the load client failed:\n{done.stderr}")
    return json.loads(done.stdout)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(out, label: str, result: dict) -> float:
    latencies = result["latencies_ms"]
    rate = len(latencies) / result["elapsed"]
    out(
        f"  {label:<16} {rate:8,.0f} req/s   p50 {_percentile(latencies, 0.5):6.2f} ms   "
        f"p99 {_percentile(latencies, 0.99):6.2f} ms   {len(latencies):,} requests, "
        f"HTTP {result['statuses']}, errors {result['errors']}"
    )
    if label == "validation":
        out(f"  {'':<16} codes {result['codes']}")
    return rate


def _check_signatures(port: int, keys: dict[str, list[str]]) -> str:
    """One validation of each kind: the code expected, and the signature verifies."""
    from licensing.signing import verify

    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(base + PUBLIC_KEY_PATH, timeout=5) as response:  # noqa: S310
        public_key = json.load(response)["public_key"]
    for code, kind in keys.items():
        body = json.dumps({"license_key": kind[0], "nonce": "check"}).encode()
        request = urllib.request.Request(base + VALIDATE_PATH, data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            answer = json.load(response)
        signature = answer.pop("signature")
        if answer["code"] != code or not verify(answer, signature, public_key):
            return f"FAILED for {code}: {answer}"
    return "one answer of each code checked: code as expected, Ed25519 signature verifies"


# --- PostgreSQL's counters and the usage queue ----------------------------------------------


def _pg_counters(db_name: str) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database "
            "WHERE datname = %s",
            [db_name],
        )
        db_writes = cursor.fetchone()[0]
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
        )
        user_writes = cursor.fetchone()[0]
        cursor.execute(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'licensing_license'"
        )
        license_scans = cursor.fetchone()[0]
    connection.close()  # our own counters reach PostgreSQL now, not during the next phase
    return {
        "db_writes": int(db_writes),
        "user_writes": int(user_writes),
        "license_scans": int(license_scans),
    }


def _queue_len(redis_url: str) -> int:
    if not redis_url:
        return 0
    from licensing.redis_client import redis_for
    from licensing.services.usage import QUEUE

    return redis_for(redis_url).llen(QUEUE)


def _drop_queued(redis_url: str, keep: int) -> None:
    """The calls the run queued name licenses of the scratch database: drop them."""
    if not redis_url:
        return
    from licensing.redis_client import redis_for
    from licensing.services.usage import QUEUE

    client = redis_for(redis_url)
    if keep:
        client.ltrim(QUEUE, 0, keep - 1)
    else:
        client.delete(QUEUE)
