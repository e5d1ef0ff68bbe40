"""`manage.py bench_license`: license validation over HTTP against a trivial view.

Runs in a scratch PostgreSQL database made for the run and dropped after it (the test
runner's way). Issues licenses (valid, expired, suspended) and makes well-formed unknown keys,
starts a real server (gunicorn, `--workers` processes of `--threads` threads, settings
`bench.license_settings`: the project's plus a trivial DRF view returning constant JSON,
DEBUG off) on the scratch database and `REDIS_URL`, with the validation rate limits raised so
the limiter (still consulted on every call) does not cap the load. A second process
(`bench/license_client.py`: threads on keep-alive connections) then posts to the validation
endpoint with the keys in turn, and to the trivial view, `--seconds` each, in `--rounds`
interleaved slices (validation, trivial, trivial, validation, ...): the machine is shared,
and interleaving gives both sides the same share of whatever else runs on it.

Besides the client's figures (throughput, latency), the server's own CPU time per request is
read from /proc (user + system time of the gunicorn workers over each slice): unlike
throughput, it hardly moves when other processes compete for the cores.

Database writes are read from PostgreSQL's own counters (`pg_stat_user_tables`,
`pg_stat_database`) before and after the measured slices, after letting the server's
connections report (PostgreSQL publishes an idle backend's counters within 10 s); the trivial
view writes nothing, so every write counted is charged to validation. Beat is not running, so
the usage-log flush (which writes the queued calls in bulk, off the request path) is not
counted: the queued calls are reported, and removed from Redis at the end.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
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
CLIENT = "bench.license_client"  # run as a module: bench/ must not be on sys.path
# Two client threads: the client is one Python process (one core at most, under its GIL) on
# the same two cores as the server, PostgreSQL and Redis. At 4 threads it takes most of a
# core and starves the server, which then measures the client more than itself.
DEFAULT_CONCURRENCY = 2


class Command(BaseCommand):
    help = "Benchmark license validation over HTTP (gunicorn) against a trivial DRF view."

    def add_arguments(self, parser):
        parser.add_argument(
            "--seconds", type=float, default=20.0, help="Of each side (validation, trivial)."
        )
        parser.add_argument(
            "--rounds", type=int, default=4, help="Interleaved slices of each side."
        )
        parser.add_argument("--licenses", type=int, default=100, help="Of each kind.")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--threads", type=int, default=2, help="gunicorn threads/worker.")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=DEFAULT_CONCURRENCY,
            help="Client threads (2: see docs/performance.md for why not more).",
        )
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

    def _run(
        self, *, seconds, rounds, licenses, workers, threads, concurrency, warmup, stats_wait, **_
    ):
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
                f"side in {rounds} interleaved slices each, after {warmup:g} s of warm-up"
            )
            out(
                f"  rate limits RAISED for the run (still checked on every call): "
                f"{', '.join(RATE_SETTINGS)} = {RAISED_RATE}"
            )
            out("  usage-log flush (beat) not running: calls stay queued during the run")
            paths = {"validation": VALIDATE_PATH, "trivial view": "/" + _trivial_path()}
            for path in paths.values():
                _load(port, path, bodies, warmup, concurrency, workers)

            time.sleep(stats_wait)
            before = _pg_counters(db_name)
            queued_before = _queue_len(redis_url)
            results = {side: [] for side in paths}
            in_order = []
            for side in _slices(list(paths), rounds):
                cpu = _workers_cpu(server.pid)
                result = _load(port, paths[side], bodies, seconds / rounds, concurrency, workers)
                used = [
                    seconds - cpu.get(pid, 0.0) for pid, seconds in _workers_cpu(server.pid).items()
                ]
                result["server_cpu"] = sum(used)
                result["busiest_worker"] = [max(used) / sum(used) if sum(used) else 0.0]
                results[side].append(result)
                in_order.append((side, result))
            queued = _queue_len(redis_url) - queued_before
            time.sleep(stats_wait)
            after = _pg_counters(db_name)
            signatures = _check_signatures(port, keys)
        finally:
            _stop(server)
            _drop_queued(redis_url, queue_before)
            shutil.rmtree(tmp, ignore_errors=True)

        validation, trivial = (_merged(results[side]) for side in paths)
        out("")
        v_rate = _row(out, "validation", validation)
        t_rate = _row(out, "trivial view", trivial)
        ratio = v_rate / t_rate if t_rate else 0.0
        v_p99 = _percentile(validation["latencies_ms"], 0.99)
        n = len(validation["latencies_ms"])
        m = len(trivial["latencies_ms"])
        delta = {k: after[k] - before[k] for k in before}
        per = delta["user_writes"] / n if n else float("nan")
        v_cpu = _per_request_us(validation["server_cpu"], n)
        t_cpu = _per_request_us(trivial["server_cpu"], m)
        out("")
        out(f"  ratio            validation at {ratio:.0%} of the trivial view (target >= 60%)")
        paired = _paired_ratios(in_order)
        if paired:
            out(
                f"  paired slices    validation / trivial in each pair of neighbouring slices: "
                f"median {statistics.median(paired):.0%}, "
                f"{min(paired):.0%} to {max(paired):.0%} ({', '.join(f'{r:.0%}' for r in paired)})"
            )
        out(f"  p99              validation {v_p99:.1f} ms (target < 25 ms)")
        out(
            f"  server CPU       {v_cpu:,.0f} us per validation, {t_cpu:,.0f} us per trivial "
            f"call (gunicorn workers' user + system time): trivial / validation = "
            f"{t_cpu / v_cpu if v_cpu else 0:.0%}"
        )
        spreads = sorted(
            {"/".join(map(str, sorted(r["spread"].values()))) for r in results[side]}
            for side in paths
        )
        reconnects = sum(r["reconnects"] for side in paths for r in results[side])
        out(
            f"  connections      per worker in each slice: "
            f"{', '.join(sorted(set().union(*spreads)))} "
            f"({reconnects} reopened to spread them)"
        )
        shares = validation["busiest_worker"] + trivial["busiest_worker"]
        out(
            f"  workers          the busier of the {workers} did {min(shares):.0%} to "
            f"{max(shares):.0%} of the server's CPU time in a slice (1/{workers}: even)"
        )
        out(
            f"  client CPU       {validation['client_cpu'] / validation['elapsed']:.0%} of a "
            f"core during validation, {trivial['client_cpu'] / trivial['elapsed']:.0%} during "
            f"the trivial view"
        )
        out(
            f"  DB writes        {delta['user_writes']:,} row writes in the project's tables "
            f"({delta['db_writes']:,} database-wide, catalogs included) over {n:,} "
            f"validations (and {m:,} trivial calls, which write nothing): {per:.4f} per "
            f"validation (target 0)"
        )
        out(
            f"  DB reads         {delta['license_scans']:,} scans of the license table: "
            f"{delta['license_scans'] / n if n else 0:.4f} per validation (cached snapshots)"
        )
        probes = sum(r["probes"] for side in paths for r in results[side])
        out(
            f"  usage log        {queued:,} calls queued in Redis for the bulk flush "
            f"({n + m:,} requests measured, {probes} untimed ones spreading the connections)"
        )
        out(f"  signatures       {signatures}")
        met = ratio >= 0.6 and v_p99 < 25 and delta["user_writes"] == 0
        out(f"  targets          {'all met' if met else 'NOT all met'}")


def _slices(sides: list[str], rounds: int) -> list[str]:
    """A B B A A B ...: each side as often first as second, so a drift in the machine's
    load favours neither."""
    order = []
    for i in range(rounds):
        order += sides if i % 2 == 0 else sides[::-1]
    return order


def _paired_ratios(in_order: list[tuple[str, dict]]) -> list[float]:
    """Validation's throughput over the trivial view's in each pair of neighbouring slices
    (validation first in the order of `_slices`): what one moment of the machine allowed."""
    ratios = []
    for (first, a), (_, b) in zip(in_order[::2], in_order[1::2], strict=False):
        v, t = (a, b) if first == "validation" else (b, a)
        v_rate = len(v["latencies_ms"]) / v["elapsed"] if v["elapsed"] else 0.0
        t_rate = len(t["latencies_ms"]) / t["elapsed"] if t["elapsed"] else 0.0
        if t_rate:
            ratios.append(v_rate / t_rate)
    return ratios


def _merged(results: list[dict]) -> dict:
    merged: dict[str, Any] = {
        "elapsed": 0.0,
        "latencies_ms": [],
        "statuses": {},
        "codes": {},
        "errors": 0,
        "client_cpu": 0.0,
        "server_cpu": 0.0,
        "busiest_worker": [],
    }
    for result in results:
        for name in ("elapsed", "errors", "client_cpu", "server_cpu"):
            merged[name] += result.get(name, 0)
        merged["latencies_ms"] += result["latencies_ms"]
        merged["busiest_worker"] += result.get("busiest_worker", [])
        for name in ("statuses", "codes"):
            for key, count in result[name].items():
                merged[name][key] = merged[name].get(key, 0) + count
    return merged


def _per_request_us(cpu_seconds: float, requests: int) -> float:
    return cpu_seconds * 1e6 / requests if requests else 0.0


def _workers_cpu(master_pid: int) -> dict[int, float]:
    """User + system seconds used so far by each child (worker) of a gunicorn master."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited meanwhile
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == master_pid:  # fields[1]: ppid; [11], [12]: utime, stime
            used[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / tick
    return used


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
    module, _, name = settings.WSGI_APPLICATION.rpartition(".")  # the project's WSGI app
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        f"{module}:{name}",
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


def _load(port, path, bodies, seconds, threads, workers) -> dict:
    job = {
        "port": port,
        "path": path,
        "bodies": bodies,
        "seconds": seconds,
        "threads": threads,
        "workers": workers,
    }
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

    client = redis_for(redis_url)
    assert client is not None  # redis_for answers None only for an empty URL
    return client.llen(QUEUE)


def _drop_queued(redis_url: str, keep: int) -> None:
    """The calls the run queued name licenses of the scratch database: drop them."""
    if not redis_url:
        return
    from licensing.redis_client import redis_for
    from licensing.services.usage import QUEUE

    client = redis_for(redis_url)
    assert client is not None  # redis_for answers None only for an empty URL
    if keep:
        client.ltrim(QUEUE, 0, keep - 1)
    else:
        client.delete(QUEUE)
