"""`manage.py bench_monitor --accounts N`: how fast the monitor sweeps N accounts.

Runs in a scratch database made for the run and dropped after it (the test runner's way), on
the simulated MT5 server, so it never touches real data. Measures, as medians of `--repeat`
runs: a quiet sweep (nothing changed), a sweep where 1% of the accounts deposited, and the
seed's way of polling (per account one state call, one deal call, one snapshot query and
one update) on the same data in the same process, and prints the ratio. The baseline is a
per-account loop, so past `--baseline-sample` accounts it is timed on a sample and scaled
linearly (said so in the output).

`--gateway webapi` runs the same sweeps through the Web API client (`WebApiMT5Gateway`) against
the stand-in (`mt5_webapi_standin`, a subprocess on a free loopback port serving the scratch
database), next to the in-process simulated gateway in the same run as the baseline: medians
of wall time, the client's CPU, the stand-in's CPU, HTTP calls and bytes per quiet sweep; then
the deposit case, where 1% of the accounts deposit, a sweep records them and the dispatch
grants them (a Type A campaign: credit, then leverage), timed from the end of the sweep to
the last credit on the server, and checked: one credit deal per depositor, none twice.

It lives in `operations` (the top floor) because the deposit case spans the monitor and the
bonus engine: it makes a campaign.
"""

import gc
import io
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import F
from django.test.utils import override_settings
from django.utils import timezone

FIRST_LOGIN = 5_000_000
SIMULATED = "gateways.mt5.simulated.SimulatedMT5Gateway"
WEBAPI = "gateways.mt5.webapi.gateway.WebApiMT5Gateway"
BENCH_MANAGER = ("1000", "Bench-pass1")


class Command(BaseCommand):
    help = "Benchmark the account monitor's sweep against the seed's per-account polling."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=1000)
        parser.add_argument("--repeat", type=int, default=5)
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument(
            "--gateway",
            choices=("simulated", "webapi"),
            default="simulated",
            help="webapi: through the Web API client and the stand-in, beside the simulated.",
        )
        parser.add_argument(
            "--deposit-rounds",
            type=int,
            default=2,
            help="webapi: deposit sweeps per gateway (each with its own 1%% of accounts).",
        )
        parser.add_argument(
            "--profile", action="store_true", help="Print a cProfile of one quiet sweep and stop."
        )
        parser.add_argument(
            "--baseline-sample",
            type=int,
            default=5000,
            help="Time the per-account baseline on at most this many accounts, then scale.",
        )

    def handle(self, *args, **options):
        if options["gateway"] == "webapi" and connection.vendor != "postgresql":
            # The stand-in is another process on the same database: not an in-memory SQLite.
            self.stdout.write("monitor bench through the Web API: skipped, needs PostgreSQL")
            return
        creation = connection.creation
        old_name = settings.DATABASES["default"]["NAME"]
        creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            with override_settings(MT5_GATEWAY=SIMULATED, DEBUG=False):
                from gateways.loading import reset_gateways

                reset_gateways()
                if options["gateway"] == "webapi":
                    self._run_webapi(**options)
                else:
                    self._run(**options)
                reset_gateways()
        finally:
            creation.destroy_test_db(old_name, verbosity=0)

    def _run(self, *, accounts, repeat, batch_size, baseline_sample, profile, **_):
        from accounts.models import MonitoredAccount
        from accounts.services import monitor_discover, monitor_sweep
        from gateways.mt5 import get_mt5_gateway

        out = self.stdout.write
        batch = batch_size or settings.MONITOR_BATCH_SIZE
        vendor = connection.vendor
        out(f"monitor bench: {accounts:,} accounts, batch {batch:,}, {vendor}, repeat {repeat}")
        started = time.perf_counter()
        _build(accounts)
        out(f"  built the simulated server in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        monitor_discover(batch_size=batch)
        out(f"  discovery registered them in {time.perf_counter() - started:.1f} s")
        monitor_sweep(batch_size=batch, dispatch=False)  # warm up: stamps, caches, plans

        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(monitor_sweep, batch_size=batch, dispatch=False)
            report = io.StringIO()
            pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(25)
            out(report.getvalue())
            return
        gateway = get_mt5_gateway()
        calls = _count_calls(gateway)

        def quiet():
            return monitor_sweep(batch_size=batch, dispatch=False)

        quiet_s, quiet_q, quiet_c = _measure(quiet, repeat, calls)
        peak = _peak_memory(quiet)

        logins = list(MonitoredAccount.objects.values_list("login", flat=True))
        depositors = logins[::100]  # 1%
        samples, queries, gateway_calls, dispatch_samples = [], [], [], []
        for _ in range(repeat):
            _deposit(depositors)
            calls.clear()
            with _QueryCounter() as counted:
                began = time.perf_counter()
                result = monitor_sweep(batch_size=batch, dispatch=False)
                samples.append(time.perf_counter() - began)
            queries.append(counted.count)
            gateway_calls.append(sum(calls.values()))
            assert result.deposits == len(depositors), result
            began = time.perf_counter()
            from accounts.services import account_events_dispatch

            account_events_dispatch(limit=len(depositors))
            dispatch_samples.append(time.perf_counter() - began)
        busy_s = statistics.median(samples)

        sample = logins[: min(len(logins), baseline_sample)]
        base_s, base_q, base_c = _measure(
            lambda: _seed_way(gateway, sample), max(1, min(repeat, 3)), calls
        )
        scale = len(logins) / len(sample)
        base_full = base_s * scale

        n = len(logins)
        out("")
        out(f"  quiet sweep      {quiet_s * 1000:10.1f} ms  {n / quiet_s:12,.0f} accounts/s")
        out(f"                   {quiet_q:10,} SQL queries   {quiet_c:6,} gateway calls")
        out(f"                   peak Python memory {peak / 1e6:.1f} MB")
        out(f"  1% deposited     {busy_s * 1000:10.1f} ms  {n / busy_s:12,.0f} accounts/s")
        out(
            f"                   {statistics.median(queries):10,.0f} SQL queries   "
            f"{statistics.median(gateway_calls):6,.0f} gateway calls   "
            f"{len(depositors):,} deposits recorded"
        )
        out(f"                   dispatching them: {statistics.median(dispatch_samples):.2f} s")
        note = "" if scale == 1 else f" (timed on {len(sample):,}, scaled x{scale:.1f})"
        rate = n / base_full
        out(f"  seed baseline    {base_full * 1000:10.1f} ms  {rate:12,.0f} accounts/s{note}")
        base_q, base_c = base_q * scale, base_c * scale
        out(f"                   {base_q:10,.0f} SQL queries   {base_c:6,.0f} gateway calls")
        out(f"  ratio            quiet sweep {base_full / quiet_s:8.1f}x faster than the baseline")

    # --- --gateway webapi ------------------------------------------------------------------

    def _run_webapi(self, *, accounts, repeat, batch_size, deposit_rounds, profile, **_):
        from accounts.services import monitor_discover, monitor_sweep
        from gateways.loading import reset_gateways
        from gateways.mt5 import get_mt5_gateway

        out = self.stdout.write
        batch = batch_size or settings.MONITOR_BATCH_SIZE
        out(
            f"monitor bench through the Web API: {accounts:,} accounts, batch {batch:,}, "
            f"{settings.MT5_WEBAPI_CONNECTIONS} connections, "
            f"{settings.MONITOR_DISPATCH_THREADS} dispatch threads, repeat {repeat}"
        )
        started = time.perf_counter()
        _build(accounts)
        monitor_discover(batch_size=batch)
        out(f"  built and discovered in {time.perf_counter() - started:.1f} s")
        with _StandIn() as standin:
            out(f"  stand-in (a subprocess, pid {standin.pid}) on {standin.url}")
            runs = {
                "simulated": {"MT5_GATEWAY": SIMULATED},
                "webapi": {
                    "MT5_GATEWAY": WEBAPI,
                    "MT5_WEBAPI_URL": standin.url,
                    "MT5_MANAGER_LOGIN": BENCH_MANAGER[0],
                    "MT5_MANAGER_PASSWORD": BENCH_MANAGER[1],
                    "MT5_WEBAPI_BATCH_SIZE": batch,
                },
            }

            def quiet():
                return monitor_sweep(batch_size=batch, dispatch=False)

            quiet_samples = {}
            for name, overrides in runs.items():
                with override_settings(**overrides):
                    reset_gateways()
                    gateway = get_mt5_gateway()
                    quiet()  # warm up: sessions, caches, plans
                    quiet()  # (threads open the pool's sessions as they need them)
                    if profile and name == "webapi":
                        self._profile(quiet)
                        return
                    quiet_samples[name] = [_sample(quiet, gateway, standin) for _ in range(repeat)]
            _quiet_report(out, quiet_samples, accounts)

            deposits = {name: [] for name in runs}
            _bench_campaign()
            offsets = iter(range(100))
            for _ in range(max(1, deposit_rounds)):
                for name, overrides in runs.items():
                    with override_settings(**overrides):
                        reset_gateways()
                        deposits[name].append(_deposit_round(next(offsets), batch))
            _deposit_report(out, deposits)
            reset_gateways()

    def _profile(self, fn) -> None:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(fn)
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(25)
        self.stdout.write(report.getvalue())


class _StandIn:
    """`manage.py mt5_webapi_standin --port 0` on the scratch database, in its own process
    (so the client's CPU is measured apart from the server's)."""

    def __enter__(self) -> "_StandIn":
        import tempfile
        from urllib.parse import quote

        db = settings.DATABASES["default"]
        auth = quote(db.get("USER") or "")
        if db.get("PASSWORD"):
            auth += ":" + quote(db["PASSWORD"])
        where = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{auth}@{where}/{quote(db['NAME'])}",
        }
        self._log = tempfile.TemporaryFile()
        self._out = tempfile.NamedTemporaryFile(mode="w+", suffix=".standin")
        login, password = BENCH_MANAGER
        command = [sys.executable, str(settings.BASE_DIR / "manage.py"), "mt5_webapi_standin"]
        command += ["--port", "0", "--manager-login", login, "--manager-password", password]
        self.process = subprocess.Popen(  # noqa: S603 - our own command, no shell
            command, env=env, stdout=self._out, stderr=self._log
        )
        self.pid = self.process.pid
        deadline = time.monotonic() + 60
        while True:
            self._out.seek(0)
            text = self._out.read()
            if " on http://" in text:
                self.url = text.split(" on ", 1)[1].split(" ", 1)[0]
                return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._log.seek(0)
                tail = self._log.read()[-2000:].decode(errors="replace")
                self.process.kill()
                raise CommandError(f"the stand-in did not start: {tail}")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU of the stand-in's process so far."""
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc) -> None:
        import signal

        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        self._log.close()


def _sample(fn, gateway, standin: _StandIn) -> dict:
    """One run of `fn`: wall and CPU seconds (client, stand-in), HTTP calls and bytes."""
    stats = getattr(gateway, "stats", None)
    before = stats() if stats else None
    server_cpu = standin.cpu_seconds()
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sample: dict[str, Any] = {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "server_cpu": standin.cpu_seconds() - server_cpu if before else 0.0,
        "calls": 0,
        "received": 0,
        "sent": 0,
    }
    if before is not None:
        assert stats is not None  # `before` was read from it
        after = stats()
        sample["calls"] = after.calls - before.calls
        sample["received"] = after.received_bytes - before.received_bytes
        sample["sent"] = after.sent_bytes - before.sent_bytes
        sample["by_path"] = {
            path: count - before.by_path.get(path, 0)
            for path, count in after.by_path.items()
            if count != before.by_path.get(path, 0)
        }
    return sample


def _median(samples: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def _quiet_report(out, samples: dict[str, list[dict]], accounts: int) -> None:
    out("")
    out(f"  quiet sweep of {accounts:,} accounts (medians of {len(samples['webapi'])})")
    out("                     wall ms  client CPU ms  stand-in CPU ms  HTTP calls    MB in  MB out")
    for name, label in (("simulated", "simulated"), ("webapi", "Web API")):
        rows = samples[name]
        out(
            f"    {label:<12} {_median(rows, 'wall') * 1000:10.1f} "
            f"{_median(rows, 'cpu') * 1000:14.1f} {_median(rows, 'server_cpu') * 1000:16.1f} "
            f"{_median(rows, 'calls'):11,.0f} {_median(rows, 'received') / 1e6:8.2f} "
            f"{_median(rows, 'sent') / 1e6:7.3f}"
        )
    sim, web = samples["simulated"], samples["webapi"]
    out(
        f"    Web API / simulated: wall x{_median(web, 'wall') / _median(sim, 'wall'):.2f}, "
        f"client CPU x{_median(web, 'cpu') / _median(sim, 'cpu'):.2f}; "
        f"{_median(web, 'calls') / max(1, -(-accounts // settings.MONITOR_BATCH_SIZE)):.1f} "
        "HTTP calls per batch"
    )


def _bench_campaign():
    from campaigns.models import Campaign

    return Campaign.objects.create(
        name="Bench: 50% Type A on deposit",
        status=Campaign.Status.ACTIVE,
        bonus_type=Campaign.BonusType.A,
        percentage=Decimal(50),
        trigger_type=Campaign.TriggerType.AUTO_DEPOSIT,
    )


def _deposit_round(offset: int, batch: int) -> dict:
    """1% of the accounts (every 100th from `offset`) deposit 100.00; a sweep records them;
    the dispatch grants 50.00 each (credit, then leverage 100 -> 66). Times and checks."""
    from accounts.models import MonitoredAccount
    from accounts.services import account_events_dispatch, monitor_sweep
    from gateways.models import SimulatedMT5Account, SimulatedMT5Deal
    from gateways.mt5 import DealAction

    logins = list(MonitoredAccount.objects.order_by("login").values_list("login", flat=True))
    depositors = logins[offset::100]
    _deposit(depositors)
    began = timezone.now()
    wall = time.perf_counter()
    result = monitor_sweep(batch_size=batch, dispatch=False)
    sweep_s = time.perf_counter() - wall
    swept_at = timezone.now()
    if result.deposits != len(depositors):
        raise CommandError(f"the sweep recorded {result.deposits} of {len(depositors)} deposits")
    wall, cpu = time.perf_counter(), time.process_time()
    dispatched = account_events_dispatch(limit=len(depositors))
    dispatch_s, dispatch_cpu = time.perf_counter() - wall, time.process_time() - cpu
    credits = SimulatedMT5Deal.objects.filter(
        account_id__in=depositors, action=DealAction.CREDIT, time__gte=began
    )
    per_login = Counter(credits.values_list("account_id", flat=True))
    last = max(credits.values_list("time", flat=True), default=None)
    return {
        "deposits": len(depositors),
        "sweep": sweep_s,
        "dispatch": dispatch_s,
        "dispatch_cpu": dispatch_cpu,
        "handled": dispatched.handled,
        "credited": len(per_login),
        "twice": sum(1 for count in per_login.values() if count > 1),
        "leverage": SimulatedMT5Account.objects.filter(pk__in=depositors, leverage=66).count(),
        "last_credit": (last - swept_at).total_seconds() if last else float("nan"),
    }


def _deposit_report(out, rounds: dict[str, list[dict]]) -> None:
    out("")
    first = rounds["webapi"][0]
    out(
        f"  1% deposited: {first['deposits']:,} deposits a round, {len(rounds['webapi'])} "
        "rounds per gateway (medians); a Type A bonus each (credit, then leverage)"
    )
    for name, label in (("simulated", "simulated"), ("webapi", "Web API")):
        rows = rounds[name]
        credited = sum(row["credited"] for row in rows)
        total = sum(row["deposits"] for row in rows)
        out(
            f"    {label:<10} sweep records them {_median(rows, 'sweep'):6.2f} s; grants "
            f"{_median(rows, 'dispatch'):6.2f} s ({_median(rows, 'dispatch_cpu'):.2f} s CPU), "
            f"last credit {_median(rows, 'last_credit'):.2f} s after the sweep "
            f"(worst {max(row['last_credit'] for row in rows):.2f} s)"
        )
        out(
            f"               credited {credited:,}/{total:,}, twice "
            f"{sum(row['twice'] for row in rows)}, leverage set "
            f"{sum(row['leverage'] for row in rows):,}/{total:,}"
        )
    sim, web = rounds["simulated"], rounds["webapi"]
    ratio = _median(web, "dispatch") / _median(sim, "dispatch")
    out(f"    Web API / simulated: grants x{ratio:.2f}")


def _build(count: int) -> None:
    from gateways.models import SimulatedMT5Account, SimulatedMT5Deal

    month_ago = timezone.now() - timedelta(days=30)
    accounts = [
        SimulatedMT5Account(
            login=FIRST_LOGIN + i,
            name=f"Bench {i}",
            group="real\\standard",
            country="United Kingdom",
            leverage=100,
            balance=Decimal("1000.00"),
            password="!",  # noqa: S106 - Django's mark for "no usable password"
            registered_at=month_ago,
        )
        for i in range(count)
    ]
    SimulatedMT5Account.objects.bulk_create(accounts, batch_size=5000)
    deals = [
        SimulatedMT5Deal(
            account_id=FIRST_LOGIN + i, action="balance", profit=Decimal("1000.00"), time=month_ago
        )
        for i in range(count)
    ]
    SimulatedMT5Deal.objects.bulk_create(deals, batch_size=5000)


def _deposit(logins: list[int]) -> None:
    """1% of the clients deposit 100.00: what the server books, written straight to it."""
    from gateways.models import SimulatedMT5Account, SimulatedMT5Deal

    SimulatedMT5Deal.objects.bulk_create(
        [SimulatedMT5Deal(account_id=x, action="balance", profit=Decimal("100.00")) for x in logins]
    )
    SimulatedMT5Account.objects.filter(login__in=logins).update(balance=F("balance") + 100)


def _seed_way(gateway, logins: list[int]) -> None:
    """The seed's loop: per account one state call, one snapshot read, one deal call, one save."""
    from accounts.models import MonitoredAccount

    for login in logins:
        state = gateway.get_accounts([login])[login]
        snapshot = MonitoredAccount.objects.get(server=settings.MT5_SERVER, login=login)
        deals = gateway.get_deals(cursors={login: snapshot.deal_cursor})
        snapshot.balance, snapshot.credit, snapshot.equity = (
            state.balance,
            state.credit,
            state.equity,
        )
        snapshot.deal_cursor = max([snapshot.deal_cursor, *(deal.ticket for deal in deals)])
        snapshot.last_polled_at = timezone.now()
        snapshot.save(
            update_fields=["balance", "credit", "equity", "deal_cursor", "last_polled_at"]
        )


def _count_calls(gateway) -> Counter:
    calls: Counter = Counter()
    for name in ("get_states", "get_deals", "get_accounts"):
        method = getattr(gateway, name)

        def counted(*args, _method=method, _name=name, **kwargs):
            calls[_name] += 1
            return _method(*args, **kwargs)

        setattr(gateway, name, counted)
    return calls


class _QueryCounter:
    def __enter__(self):
        self.count = 0
        self._cm = connection.execute_wrapper(self)
        self._cm.__enter__()
        return self

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)


def _measure(fn, repeat: int, calls: Counter) -> tuple[float, int, int]:
    """Median seconds of `fn`, and the SQL queries and gateway calls of its last run."""
    samples = []
    for _ in range(repeat):
        calls.clear()
        gc.collect()
        with _QueryCounter() as counted:
            began = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - began)
    return statistics.median(samples), counted.count, sum(calls.values())


def _peak_memory(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
