"""`manage.py bench_pool --concurrency C --requests R`: press-pass activations under load.

Runs in a scratch PostgreSQL database made for the run and dropped after it (the test
runner's way), against a live gunicorn server started on a free local port and pointed at
that database, with the simulated demo server and delivery method `api` (nothing leaves the
machine). It pre-fills the pool with R accounts through the provisioning queue, authenticates
with an integration API key, and fires R activations (distinct user ids) from C client
threads. It prints throughput, p50/p99 latency, status codes and accounts handed out twice
(in the answers and in the database).

Then, unless `--steady-seconds 0`: a steady `--steady-rate` activations per second while a
background thread runs the refill every second (as beat would, and again at once while it is
under target, as the task's follow-up would); it prints the lowest `available` seen against
the configured minimum.

The simulated demo server hashes each password it is given with the project's password hasher
(PBKDF2, ~0.2 s of CPU here): that is the remote server's own work, which a real gateway
waits for over the network without spending our CPU. By default the bench's server uses
`BenchDemoGateway` (the simulated server with an MD5 hash, same queries); `--simulator-hash
pbkdf2` keeps the original to measure with that cost included.
"""

import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from urllib.parse import quote

import requests
from django.conf import settings
from django.contrib.auth.hashers import MD5PasswordHasher, make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count
from django.test.utils import override_settings

from gateways.demo.simulated import GATEWAY, SimulatedDemoGateway, _not_found, _pk
from gateways.errors import PermanentGatewayError
from gateways.simulation import apply_knobs

ACTIVATE = "/api/v1/demo/press-pass/activate/"
BENCH_GATEWAY = "demo_pool.management.commands.bench_pool.BenchDemoGateway"
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAX_SERVER_THREADS = 64  # PostgreSQL allows 100 connections here: keep the server under 64
_FAST = MD5PasswordHasher()


class BenchDemoGateway(SimulatedDemoGateway):
    """The simulated demo server, hashing new passwords with MD5 instead of PBKDF2."""

    def change_password(self, login: int, password: str) -> None:
        from gateways.models import SimulatedDemoAccount

        apply_knobs(GATEWAY)
        if len(password) < 8:
            raise PermanentGatewayError(
                "password must have at least 8 characters", gateway=GATEWAY, code="bad_request"
            )
        updated = SimulatedDemoAccount.objects.filter(pk=_pk(login)).update(
            password_hash=make_password(password, hasher=_FAST)
        )
        if not updated:
            raise _not_found(login)


class Command(BaseCommand):
    help = "Benchmark press-pass activations against a live server on a scratch database."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=100)
        parser.add_argument("--requests", type=int, default=1000)
        parser.add_argument("--warmup", type=int, default=None, help="Untimed first (C).")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
        parser.add_argument(
            "--threads", type=int, default=None, help="per worker (C / workers, at most 64 all)"
        )
        parser.add_argument("--steady-rate", type=float, default=20.0)
        parser.add_argument("--steady-seconds", type=float, default=30.0, help="0: skip")
        parser.add_argument("--simulator-hash", choices=["md5", "pbkdf2"], default="md5")

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
        threads = threads or max(1, min(-(-conc // workers), MAX_SERVER_THREADS // workers))
        out(
            f"pool bench: {total:,} activations from {conc} clients (+{warmup} warm-up), "
            f"gunicorn {workers} workers x {threads} threads, simulated server hash "
            f"{options['simulator_hash']}"
        )
        config = _configure_pool(max_size=10 * (total + warmup) + 1000)
        started = time.perf_counter()
        available = _prefill(total + warmup)
        took = time.perf_counter() - started
        out(f"  pre-filled {available:,} available accounts in {took:.1f} s")
        key = _api_key()
        gateway = BENCH_GATEWAY if options["simulator_hash"] == "md5" else None
        with _Server(workers=workers, threads=threads, gateway=gateway) as server:
            out(f"  server up on {server.base} in {server.boot_s:.1f} s")
            client = _Client(server.base, key)
            client.burst(prefix="warm", count=warmup, concurrency=conc)
            _report_burst(out, client.burst(prefix="load", count=total, concurrency=conc))
            if options["steady_seconds"] > 0:
                _report_steady(
                    out,
                    config,
                    _steady(client, options["steady_rate"], options["steady_seconds"], config),
                )
            server.check(out)
        _purge_queued_tasks()


def _configure_pool(*, max_size: int):
    """Seed sizing (min 25, target 40, batch 5), the max raised so assigned ones don't cap it."""
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


class _Server:
    """gunicorn (gthread) on a free local port, on the scratch database."""

    def __init__(self, *, workers: int, threads: int, gateway: str | None):
        self.workers, self.threads, self.gateway = workers, threads, gateway
        handle, self.log_name = tempfile.mkstemp(prefix="bench_pool-", suffix=".log")
        self.log = os.fdopen(handle, "w")

    def __enter__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": _scratch_url()}
        if self.gateway:
            env["DEMO_GATEWAY"] = self.gateway
        command = [
            sys.executable, "-m", "gunicorn", ":".join(settings.WSGI_APPLICATION.rsplit(".", 1)),
            "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--workers", str(self.workers), "--threads", str(self.threads),
            "--backlog", "2048", "--timeout", "120", "--log-level", "warning",
        ]  # fmt: skip
        began = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: S603 - our own fixed command
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise CommandError(f"gunicorn exited: {self._tail()}")
            try:
                requests.get(f"{self.base}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise CommandError(f"gunicorn did not answer: {self._tail()}") from None
                time.sleep(0.2)
        self.boot_s = time.perf_counter() - began
        return self

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


class _Client:
    def __init__(self, base: str, key: str):
        self.url = base + ACTIVATE
        self.headers = {"Authorization": f"Api-Key {key}"}
        self.local = threading.local()

    def activate(self, user_id: str) -> tuple[int, float, int | None]:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        body = {"user_id": user_id, "real_name": "Bench User", "delivery_method": "api"}
        began = time.perf_counter()
        try:
            response = session.post(self.url, json=body, headers=self.headers, timeout=60)
        except requests.RequestException as exc:
            return -1, time.perf_counter() - began, type(exc).__name__
        elapsed = time.perf_counter() - began
        login = response.json()["account"]["login"] if response.status_code == 201 else None
        return response.status_code, elapsed, login

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


def _report_burst(out, burst: dict) -> None:
    results, seconds = burst["results"], burst["seconds"]
    latencies = [r[1] * 1000 for r in results]
    codes = Counter(r[0] for r in results)
    logins = Counter(r[2] for r in results if r[0] == 201)
    twice_answers = sum(1 for n in logins.values() if n > 1)
    twice_db, mismatch = _handed_twice()
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


def _steady(client: _Client, rate: float, seconds: float, config) -> dict:
    """Open-loop `rate` activations per second for `seconds`, the refill looping beside it."""
    from concurrent.futures import ThreadPoolExecutor

    from demo_pool.models import DemoAccount
    from demo_pool.services import pool_refill

    stop = threading.Event()
    seen, runs = [], Counter()

    def refill_loop():
        follow = False
        try:
            while not stop.is_set():
                result = pool_refill(topping_up=follow)
                runs["runs"] += 1
                runs["provisioned"] += result.provisioned
                runs["fulfilled"] += result.fulfilled
                follow = result.below_target
                if not follow:
                    stop.wait(1.0)
        finally:
            connection.close()

    def sample_loop():
        try:
            while not stop.is_set():
                seen.append(DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE).count())
                stop.wait(0.1)
        finally:
            connection.close()

    # Start full, as beat would have left it: refill up to the target first.
    while pool_refill(topping_up=True).below_target:
        pass
    start_available = DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE).count()
    helpers = [threading.Thread(target=f, daemon=True) for f in (refill_loop, sample_loop)]
    for thread in helpers:
        thread.start()
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
    time.sleep(1.0)  # one more refill pass for anything queued at the very end
    stop.set()
    for thread in helpers:
        thread.join()
    return {
        "results": results,
        "seconds": elapsed,
        "seen": seen,
        "start": start_available,
        "runs": runs,
    }


def _report_steady(out, config, steady: dict) -> None:
    from demo_pool.models import ActivationRequest

    results, seen = steady["results"], steady["seen"]
    latencies = [r[1] * 1000 for r in results]
    codes = Counter(r[0] for r in results)
    waiting = ActivationRequest.objects.filter(status__in=ActivationRequest.OPEN).count()
    twice_db, _ = _handed_twice()
    runs = steady["runs"]
    out("")
    out(
        f"  steady: {len(results):,} activations at {len(results) / steady['seconds']:.1f}/s "
        f"for {steady['seconds']:.1f} s, refill every 1 s (pool min {config.min_available}, "
        f"target {config.target_buffer}, batch {config.provision_batch_size})"
    )
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
        f"    refill           {runs['runs']} runs, {runs['provisioned']} provisioned, "
        f"{runs['fulfilled']} queued activations fulfilled, {waiting} still waiting"
    )
    out(f"    handed out twice {twice_db} (accounts in DB, all phases)")


def _purge_queued_tasks() -> None:
    """The server queued refill nudges no worker will run: drop them from the broker."""
    try:
        from celery import current_app

        current_app.control.purge()
    except Exception:  # noqa: S110 - best effort: beat does the same work anyway
        pass
