"""`manage.py bench_pool --concurrency C --requests R`: press-pass activations under load.

Runs in a scratch PostgreSQL database made for the run and dropped after it (the test
runner's way), against a live gunicorn server started on a free local port and pointed at
that database, DEBUG off as in production, with the simulated demo server and delivery method
`api` (nothing leaves the machine). It pre-fills the pool with R + warm-up accounts through
the provisioning queue, authenticates with an integration API key, and fires R activations
(distinct user ids) from C client threads, each with one keep-alive connection (stdlib
`http.client`, the cheapest client at hand). It prints throughput, p50/p99 latency, status
codes, accounts handed out twice (in the answers and in the database), and the CPU each
activation cost: the server's processes, the PostgreSQL backends of the scratch database and
this client, read from /proc.

Then, unless `--steady-seconds 0`: a steady `--steady-rate` activations per second (open
loop) with a real Celery worker consuming what the server queues (a refill after each
assignment that leaves the pool under its target), as in production; it prints the lowest
`available` seen against the configured minimum.

The simulated demo server hashes each password it is given with the project's password hasher
(PBKDF2, ~0.2 s of CPU here): that is the remote server's own work, which a real gateway
waits for over the network without spending our CPU. By default the bench's server uses
`BenchDemoGateway` (the simulated server with an MD5 hash, same queries); `--simulator-hash
pbkdf2` keeps the original to measure with that cost included.

`--profile N` skips the server: N activations in this process through Django's test Client,
with the CPU per activation (Python, and the PostgreSQL backend), the queries of one, and a
cProfile.
"""

import base64
import http.client
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count
from django.test.utils import override_settings

from gateways.demo.simulated import (
    SimulatedDemoGateway,
)

ACTIVATE = "/api/v1/demo/press-pass/activate/"
BENCH_GATEWAY = "bench.pool.BenchDemoGateway"
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SERVER_THREADS = 4  # per gunicorn worker: enough to overlap database waits on 2 cores
SEED_MAX_POOL_SIZE = 100
_FAST = MD5PasswordHasher()


class BenchDemoGateway(SimulatedDemoGateway):
    """The simulated demo server, hashing new passwords with MD5 instead of PBKDF2."""

    password_hasher = _FAST


class Command(BaseCommand):
    help = "Benchmark press-pass activations against a live server on a scratch database."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=100)
        parser.add_argument("--requests", type=int, default=1000)
        parser.add_argument("--warmup", type=int, default=None, help="Untimed first (C).")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
        parser.add_argument(
            "--threads", type=int, default=SERVER_THREADS, help="gunicorn threads per worker"
        )
        parser.add_argument("--steady-rate", type=float, default=20.0)
        parser.add_argument("--steady-seconds", type=float, default=30.0, help="0: skip")
        parser.add_argument("--simulator-hash", choices=["md5", "pbkdf2"], default="md5")
        parser.add_argument(
            "--profile",
            type=int,
            default=0,
            metavar="N",
            help="In-process instead: N activations through Django's test Client (DEBUG off), "
            "CPU ms each (Python and PostgreSQL backend), queries, then a cProfile; no server.",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_pool needs PostgreSQL (DATABASE_URL=postgres://...).")
        creation = connection.creation
        old_name = settings.DATABASES["default"]["NAME"]
        creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        # One INFO line per provisioned account and per delivery otherwise.
        quiet = [logging.getLogger(name) for name in ("demo_pool", "delivery")]
        levels = [logger.level for logger in quiet]
        for logger in quiet:
            logger.setLevel(logging.WARNING)
        try:
            # This process provisions accounts: the simulated server's PBKDF2 would take
            # minutes for a thousand, so it hashes with MD5 here (setup only, not measured).
            with override_settings(PASSWORD_HASHERS=FAST_HASHERS):
                from gateways.loading import reset_gateways

                reset_gateways()
                self._run(**options)
                reset_gateways()
        finally:
            for logger, level in zip(quiet, levels, strict=True):
                logger.setLevel(level)
            connection.close()
            creation.destroy_test_db(old_name, verbosity=0)

    def _run(self, *, concurrency, requests, warmup, workers, threads, **options):
        out = self.stdout.write
        conc, total = concurrency, requests
        warmup = conc if warmup is None else warmup
        if options["profile"]:
            # Warm-up, timed, counted and profiled runs, and the target left over.
            total, warmup = 2 * options["profile"] + 21 + 45, 0
        # The pre-fill is past the seed's max (100 kept warm): raised for it, then put back.
        config = _configure_pool(max_size=total + warmup)
        started = time.perf_counter()
        available = _prefill(total + warmup)
        took = time.perf_counter() - started
        config = _configure_pool(max_size=SEED_MAX_POOL_SIZE)
        key = _api_key()
        if options["profile"]:
            out(f"pool profile: pre-filled {available:,} available accounts in {took:.1f} s")
            _profile(out, options["profile"], key, options["simulator_hash"])
            return
        out(
            f"pool bench: {total:,} activations from {conc} clients (+{warmup} warm-up), "
            f"gunicorn {workers} workers x {threads} threads (gthread, DEBUG off), simulated "
            f"server hash {options['simulator_hash']}"
        )
        out(f"  pre-filled {available:,} available accounts in {took:.1f} s")
        gateway = BENCH_GATEWAY if options["simulator_hash"] == "md5" else None
        env = _process_env(gateway)
        with _Server(env, workers=workers, threads=threads) as server:
            out(f"  server up on 127.0.0.1:{server.port} in {server.boot_s:.1f} s")
            client = _Client(server.port, key)
            client.burst(prefix="warm", count=warmup, concurrency=conc)
            meter = _CpuMeter(server)
            burst = client.burst(prefix="load", count=total, concurrency=conc)
            _report_burst(out, burst, meter.per_request(len(burst["results"])))
            if options["steady_seconds"] > 0:
                _purge_queued_tasks()  # nudges of the burst: nobody needs them now
                with _Worker(env) as worker:
                    worker.refill_to_target(config.target_buffer)
                    steady = _steady(client, options["steady_rate"], options["steady_seconds"])
                    _report_steady(out, config, steady)
                    worker.check(out)
            server.check(out)
        _purge_queued_tasks()


def _configure_pool(*, max_size: int):
    """Seed sizing (min 25, target 40, batch 5) with this max pool size."""
    from demo_pool.models import PoolConfig

    config = PoolConfig.load()
    config.max_pool_size = max_size
    config.save()
    return config


def _prefill(count: int) -> int:
    """`count` available accounts, made through the provisioning queue and the gateway."""
    from demo_pool.models import DemoAccount
    from demo_pool.services import provisioning_enqueue, provisioning_process

    queued = provisioning_enqueue(count=count, source="bench")
    done = provisioning_process(limit=queued)
    if done["provisioned"] != count:
        raise CommandError(f"pre-fill provisioned {done} of {count}")
    return DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE).count()


def _api_key() -> str:
    from accounts.models import User
    from accounts.roles import Role
    from accounts.services import api_key_create, roles_sync, user_set_roles

    roles_sync()
    user = User.objects.create_user(email="bench@example.com", username="bench", password=None)
    user_set_roles(user=user, roles=[Role.SUPER_ADMIN])
    _, raw = api_key_create(user=user, name="bench_pool")
    return raw


def _scratch_url() -> str:
    db = settings.DATABASES["default"]
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def _process_env(gateway: str | None) -> dict:
    """The server's and worker's environment: the scratch database, DEBUG off, and the secrets
    production must set (this process's own, so both sides agree)."""
    from delivery.crypto import load_or_create_key_file

    keys = settings.ENCRYPTION_KEYS or load_or_create_key_file(settings.ENCRYPTION_KEY_FILE)
    keys = ",".join(
        line.strip()
        for line in keys.splitlines()
        if line.strip() and not line.strip().startswith("#")
    )
    env = {
        **os.environ,
        "DATABASE_URL": _scratch_url(),
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "SECURE_SSL_REDIRECT": "false",  # plain HTTP on the loopback
        "ENCRYPTION_KEYS": keys,
        "LICENSE_KEY_PEPPER": settings.LICENSE_KEY_PEPPER,
        # Not used here; production refuses to start without one.
        "LICENSE_SIGNING_KEY": settings.LICENSE_SIGNING_KEY
        or base64.b64encode(os.urandom(32)).decode(),
        # Production refuses to start without a real email backend; nothing here sends one.
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    }
    if gateway:
        env["DEMO_GATEWAY"] = gateway
    return env


def _cpu_seconds(pid: int) -> float:
    """CPU (user + system) a process has used so far, all its threads; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


def _backend_pids() -> list[int]:
    """The PostgreSQL backends connected to the scratch database (same machine)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def _backend_cpu_s() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend (same machine: /proc)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return _cpu_seconds(pid)


class _CpuMeter:
    """CPU spent from now on by the server, the scratch database's backends and this process."""

    def __init__(self, server):
        self.server = server
        self.server_before = server.cpu_seconds()
        self.backends_before = {pid: _cpu_seconds(pid) for pid in _backend_pids()}
        self.client_before = time.process_time()

    def per_request(self, count: int) -> dict:
        client = time.process_time() - self.client_before
        server = self.server.cpu_seconds() - self.server_before
        # Backends that connected during the run count from zero.
        database = sum(
            _cpu_seconds(pid) - self.backends_before.get(pid, 0.0) for pid in _backend_pids()
        )
        return {
            "server": server * 1000 / count,
            "database": database * 1000 / count,
            "client": client * 1000 / count,
        }


class _Server:
    """gunicorn (gthread) on a free local port, on the scratch database."""

    def __init__(self, env: dict, *, workers: int, threads: int):
        self.env, self.workers, self.threads = env, workers, threads
        handle, self.log_name = tempfile.mkstemp(prefix="bench_pool-", suffix=".log")
        self.log = os.fdopen(handle, "w")

    def __enter__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        command = [
            sys.executable, "-m", "gunicorn", ":".join(settings.WSGI_APPLICATION.rsplit(".", 1)),
            "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
            "--workers", str(self.workers), "--threads", str(self.threads),
            "--backlog", "2048", "--keep-alive", "30", "--timeout", "120",
            "--log-level", "warning",
        ]  # fmt: skip
        began = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: S603 - our own fixed command
            command,
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise CommandError(f"gunicorn exited: {self._tail()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise CommandError(f"gunicorn did not answer: {self._tail()}") from None
                time.sleep(0.2)
        self.boot_s = time.perf_counter() - began
        return self

    def cpu_seconds(self) -> float:
        pid = self.process.pid
        return _cpu_seconds(pid) + sum(_cpu_seconds(child) for child in _children(pid))

    def check(self, out) -> None:
        tail = self._tail()
        errors = [line for line in tail.splitlines() if "Error" in line or "Traceback" in line]
        if errors:
            out(f"  server log ({self.log_name}) has errors, e.g. {errors[0][:200]}")

    def _tail(self) -> str:
        self.log.flush()
        with open(self.log_name, encoding="utf-8", errors="replace") as f:
            return f.read()[-3000:]

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        if exc[0] is None:
            os.unlink(self.log_name)
        return False


class _Worker:
    """A Celery worker (one process, one task at a time) on the scratch database: it runs the
    refills the server queues, as production's workers do."""

    def __init__(self, env: dict):
        self.env = env
        handle, self.log_name = tempfile.mkstemp(prefix="bench_pool-worker-", suffix=".log")
        self.log = os.fdopen(handle, "w")

    def __enter__(self):
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
            "--loglevel", "warning", "--without-gossip", "--without-mingle",
            "--without-heartbeat",
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - our own fixed command
            command, cwd=settings.BASE_DIR, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        return self

    def refill_to_target(self, target: int) -> None:
        """Queue a refill through the broker and wait until the worker has run it (so it is up
        and consuming, with any broker): the pool at its target, as beat would leave it."""
        from demo_pool import tasks
        from demo_pool.models import DemoAccount

        tasks.refill.apply_async()
        available = DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE)
        deadline = time.monotonic() + 120
        while available.count() < target:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise CommandError(f"the Celery worker did not refill: see {self.log_name}")
            time.sleep(0.1)

    def check(self, out) -> None:
        self.log.flush()
        with open(self.log_name, encoding="utf-8", errors="replace") as f:
            tail = f.read()[-3000:]
        errors = [line for line in tail.splitlines() if "Error" in line or "Traceback" in line]
        if errors:
            out(f"  worker log ({self.log_name}) has errors, e.g. {errors[0][:200]}")

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        if exc[0] is None:
            os.unlink(self.log_name)
        return False


class _Client:
    """Activations over one keep-alive `http.client` connection per thread."""

    def __init__(self, port: int, key: str):
        self.port = port
        self.headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        self.local = threading.local()

    def activate(self, user_id: str) -> tuple[int, float, int | str | None]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        body = json.dumps({"user_id": user_id, "real_name": "Bench User", "delivery_method": "api"})
        began = time.perf_counter()
        try:
            conn.request("POST", ACTIVATE, body, self.headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            self.local.conn = None
            return -1, time.perf_counter() - began, type(exc).__name__
        elapsed = time.perf_counter() - began
        if response.will_close:
            conn.close()
            self.local.conn = None
        login = json.loads(data)["account"]["login"] if response.status == 201 else None
        return response.status, elapsed, login

    def burst(self, *, prefix: str, count: int, concurrency: int) -> dict:
        """`count` activations from `concurrency` threads, each as fast as answers come."""
        results, lock, nxt = [], threading.Lock(), iter(range(count))
        gate = threading.Barrier(concurrency + 1)

        def work():
            gate.wait()
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                answer = self.activate(f"{prefix}-{i}")
                with lock:
                    results.append(answer)

        pool = [threading.Thread(target=work, daemon=True) for _ in range(concurrency)]
        for thread in pool:
            thread.start()
        gate.wait()
        began = time.perf_counter()
        for thread in pool:
            thread.join()
        return {"results": results, "seconds": time.perf_counter() - began, "prefix": prefix}


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))]


def _handed_twice() -> tuple[int, int]:
    """Accounts with more than one press pass; press passes vs assigned accounts (DB)."""
    from demo_pool.models import DemoAccount, PressPass

    twice = (
        PressPass.objects.order_by()
        .values("account_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    passes = PressPass.objects.count()
    assigned = DemoAccount.objects.filter(status=DemoAccount.Status.ASSIGNED).count()
    return twice, passes - assigned


def _report_burst(out, burst: dict, cpu: dict) -> None:
    results, seconds = burst["results"], burst["seconds"]
    latencies = [r[1] * 1000 for r in results]
    codes = Counter(r[0] for r in results)
    logins = Counter(r[2] for r in results if r[0] == 201)
    twice_answers = sum(1 for n in logins.values() if n > 1)
    twice_db, mismatch = _handed_twice()
    total_cpu = sum(cpu.values())
    cores = os.cpu_count()
    assert cores is not None  # Linux, where the bench reads /proc, always names its CPUs
    out("")
    out(f"  burst: {len(results):,} activations in {seconds:.2f} s")
    out(f"    throughput       {len(results) / seconds:8.1f} req/s")
    out(
        f"    latency          p50 {_pct(latencies, 50):7.1f} ms   "
        f"p99 {_pct(latencies, 99):7.1f} ms   max {max(latencies):7.1f} ms   "
        f"mean {statistics.mean(latencies):7.1f} ms"
    )
    out(f"    status codes     {dict(sorted(codes.items()))}")
    out(f"    handed out twice {twice_answers} (logins in answers), {twice_db} (accounts in DB)")
    out(f"    passes - assigned accounts in DB: {mismatch}")
    out(
        f"    CPU/activation   {total_cpu:.1f} ms: server {cpu['server']:.1f}, PostgreSQL "
        f"{cpu['database']:.1f}, client {cpu['client']:.1f} (/proc; {cores} cores "
        f"give at most {cores * 1000 / total_cpu:.0f} activations/s)"
    )


def _steady(client: _Client, rate: float, seconds: float) -> dict:
    """Open-loop `rate` activations per second for `seconds`; the worker refills."""
    from concurrent.futures import ThreadPoolExecutor

    from demo_pool.models import ActivationRequest, DemoAccount, ProvisioningRequest

    stop = threading.Event()
    seen = []

    def sample_loop():
        try:
            while not stop.is_set():
                seen.append(DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE).count())
                stop.wait(0.1)
        finally:
            connection.close()

    start_available = DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE).count()
    provisioned_before = ProvisioningRequest.objects.filter(status="done").count()
    sampler = threading.Thread(target=sample_loop, daemon=True)
    sampler.start()
    count = int(rate * seconds)
    futures = []
    with ThreadPoolExecutor(max_workers=32) as executor:
        began = time.perf_counter()
        for i in range(count):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(executor.submit(client.activate, f"steady-{i}"))
        results = [f.result() for f in futures]
        elapsed = time.perf_counter() - began
    stop.set()
    sampler.join()
    waiting = ActivationRequest.objects.filter(status__in=ActivationRequest.OPEN)
    deadline = time.monotonic() + 10  # the worker serves activations queued at the very end
    while waiting.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return {
        "results": results,
        "seconds": elapsed,
        "seen": seen,
        "start": start_available,
        "provisioned": ProvisioningRequest.objects.filter(status="done").count()
        - provisioned_before,
        "fulfilled": ActivationRequest.objects.filter(status="assigned").count(),
        "waiting": waiting.count(),
    }


def _report_steady(out, config, steady: dict) -> None:
    results, seen = steady["results"], steady["seen"]
    latencies = [r[1] * 1000 for r in results]
    codes = Counter(r[0] for r in results)
    twice_db, _ = _handed_twice()
    out("")
    out(
        f"  steady: {len(results):,} activations at {len(results) / steady['seconds']:.1f}/s "
        f"for {steady['seconds']:.1f} s, a Celery worker refilling on the server's nudges "
        f"(pool min {config.min_available}, target {config.target_buffer}, batch "
        f"{config.provision_batch_size}, max {config.max_pool_size})"
    )
    broker = settings.CELERY_BROKER_URL.split(":", 1)[0]
    if broker == "filesystem":
        out("    broker           filesystem: the worker polls it every second (production: Redis)")
    p50, p99 = _pct(latencies, 50), _pct(latencies, 99)
    out(f"    latency          p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    out(f"    status codes     {dict(sorted(codes.items()))}")
    out(
        f"    available        start {steady['start']}, min {min(seen)}, "
        f"max {max(seen)}, end {seen[-1]} ({len(seen)} samples every 0.1 s)"
    )
    verdict = "kept" if min(seen) >= config.min_available else "NOT kept"
    out(f"    available >= min {verdict} (min seen {min(seen)} vs min {config.min_available})")
    out(
        f"    refill           {steady['provisioned']} provisioned, {steady['fulfilled']} "
        f"queued activations fulfilled, {steady['waiting']} still waiting"
    )
    out(f"    handed out twice {twice_db} (accounts in DB, all phases)")


def _profile(out, count: int, key: str, simulator_hash: str) -> None:
    """One activation at a time, in this process: CPU per activation, queries, a cProfile."""
    import cProfile
    import io
    import pstats

    from django.test import Client

    from gateways.loading import reset_gateways

    client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}")
    counter = iter(range(10**9))

    def activate():
        body = {"user_id": f"profile-{next(counter)}", "real_name": "Bench User"}
        body["delivery_method"] = "api"
        response = client.post(ACTIVATE, body, content_type="application/json")
        if response.status_code != 201:
            raise CommandError(f"activation answered {response.status_code}: {response.content}")

    gateway = BENCH_GATEWAY if simulator_hash == "md5" else settings.DEMO_GATEWAY
    with override_settings(DEBUG=False, DEMO_GATEWAY=gateway):
        reset_gateways()
        for _ in range(20):
            activate()  # warm up: imports, caches, the connection
        python_ms, wall_ms = [], []
        db_before = _backend_cpu_s()
        for _ in range(count):
            cpu, wall = time.thread_time(), time.perf_counter()
            activate()
            wall_ms.append((time.perf_counter() - wall) * 1000)
            python_ms.append((time.thread_time() - cpu) * 1000)
        db_ms = (_backend_cpu_s() - db_before) * 1000 / count
        queries = []

        def record(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            activate()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            activate()
        profiler.disable()
        reset_gateways()
    dump = os.path.join(tempfile.gettempdir(), "bench_pool.prof")
    profiler.dump_stats(dump)
    out(f"  {count} activations in-process (test Client, DEBUG off), one at a time:")
    out(
        f"    CPU per activation: Python median {statistics.median(python_ms):.2f} ms, "
        f"PostgreSQL backend {db_ms:.2f} ms (mean; /proc), "
        f"wall median {statistics.median(wall_ms):.2f} ms"
    )
    out(f"    queries per activation: {len(queries)} (plus BEGIN/COMMIT)")
    for sql in queries:
        out(f"      {' '.join(sql.split())[:150]}")
    report = io.StringIO()
    stats = pstats.Stats(profiler, stream=report)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    out(report.getvalue())
    out(f"  profile saved to {dump}")


def _purge_queued_tasks() -> None:
    """Drop queued refill nudges from the broker (the burst's, and any left at the end)."""
    try:
        from celery import current_app

        current_app.control.purge()
    except Exception:  # noqa: S110 - best effort: beat does the same work anyway
        pass
