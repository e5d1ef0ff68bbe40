"""`manage.py bench_monitor --accounts N`: how fast the monitor sweeps N accounts.

Runs in a scratch database made for the run and dropped after it (the test runner's way), on
the simulated MT5 server, so it never touches real data. Measures, as medians of `--repeat`
runs: a quiet sweep (nothing changed), a sweep where 1% of the accounts deposited, and the
seed's way of polling (per account one state call, one deal call, one snapshot query and
one update) on the same data in the same process, and prints the ratio. The baseline is a
per-account loop, so past `--baseline-sample` accounts it is timed on a sample and scaled
linearly (said so in the output).
"""

import gc
import io
import statistics
import time
import tracemalloc
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.models import F
from django.test.utils import override_settings
from django.utils import timezone

FIRST_LOGIN = 5_000_000
SIMULATED = "gateways.mt5.simulated.SimulatedMT5Gateway"


class Command(BaseCommand):
    help = "Benchmark the account monitor's sweep against the seed's per-account polling."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=1000)
        parser.add_argument("--repeat", type=int, default=5)
        parser.add_argument("--batch-size", type=int, default=None)
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
        creation = connection.creation
        old_name = settings.DATABASES["default"]["NAME"]
        creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            with override_settings(MT5_GATEWAY=SIMULATED, DEBUG=False):
                from gateways.loading import reset_gateways

                reset_gateways()
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
