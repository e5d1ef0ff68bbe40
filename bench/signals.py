"""`manage.py bench_signals --sessions N`: one signal to N running sessions, end to end.

Runs in a scratch database made for the run and dropped after it (the test runner's way), on
the simulated broker. N users each get a demo account and a running session subscribed to
one channel. Then, `--rounds` times:

1. fan-out: `signal_receive` (what `POST signals/` and the Telegram reader call), timed and
   with its queries counted; the baseline is a bare `bulk_create` of N trade rows in the same
   batches, the floor any fan-out has to pay;
2. open: the trades' `open_trades` chunks run by `--workers` threads (each its own database
   connection, as Celery worker processes would have), until every trade is open;
3. settle: after the trades expire (`--duration` seconds of real waiting), the
   `settle_trades` chunks run the same way, until every trade is settled.

It prints medians over the rounds: the fan-out (and its ratio to the baseline), the time from
the signal to all trades open and to all settled, and the queries of one fan-out against the
same fan-out at a tenth of the sessions (they grow with batches, not sessions).
"""

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

SIMULATED = "gateways.broker.simulated.SimulatedBrokerGateway"


class Command(BaseCommand):
    help = "Benchmark one signal's fan-out, opening and settling across N sessions."

    def add_arguments(self, parser):
        parser.add_argument("--sessions", type=int, default=10_000)
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--workers", type=int, default=4)
        parser.add_argument("--duration", type=int, default=5, help="Trade duration, seconds.")
        parser.add_argument(
            "--profile", action="store_true", help="Print a cProfile of one fan-out and stop."
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_signals measures PostgreSQL: set DATABASE_URL.")
        creation = connection.creation
        old_name = settings.DATABASES["default"]["NAME"]
        creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            with override_settings(BROKER_GATEWAY=SIMULATED, DEBUG=False):
                from gateways.loading import reset_gateways

                reset_gateways()
                self._run(**options)
                reset_gateways()
        finally:
            connections.close_all()
            creation.destroy_test_db(old_name, verbosity=0)

    def _run(self, *, sessions, rounds, workers, duration, profile, **_):
        from trading_sessions.models import SignalChannel
        from trading_sessions.seeding import sessions_seed

        out = self.stdout.write
        batch = settings.TRADING_FANOUT_BATCH
        out(
            f"signals bench: {sessions:,} sessions, fan-out batch {batch:,}, "
            f"{workers} workers, {duration} s trades, {rounds} rounds, PostgreSQL"
        )
        started = time.perf_counter()
        channel = SignalChannel.objects.create(code="bench", name="Bench")
        small = SignalChannel.objects.create(code="bench-tenth", name="Bench, a tenth")
        sessions_seed(
            count=sessions, channel=channel, simulated_broker={"win_rate": Decimal("0.50")}
        )
        sessions_seed(count=max(1, sessions // 10), channel=small, prefix="tenth")
        out(f"  seeded in {time.perf_counter() - started:.1f} s")

        tenth_queries = self._fan_out(small, sessions // 10)[1]
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(self._fan_out, channel, sessions)
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
            return
        self._settle_everything_now()
        fan, base, to_open, to_settle, queries = [], [], [], [], None
        for n in range(rounds):
            base.append(self._baseline(sessions, batch))
            fan_ms, queries, signal = self._fan_out(channel, sessions)
            fan.append(fan_ms)
            open_ms = self._drain("open", signal, workers)
            to_open.append(fan_ms + open_ms)
            settle_ms = self._settle_when_due(signal, workers, duration)
            to_settle.append(fan_ms + open_ms + settle_ms)
            out(
                f"  round {n + 1}: fan-out {fan_ms:,.0f} ms (bulk insert alone "
                f"{base[-1]:,.0f} ms), all open after {to_open[-1]:,.0f} ms, all settled "
                f"{settle_ms:,.0f} ms after expiry (+{duration} s of trade)"
            )
        med = statistics.median
        out("")
        out(f"  fan-out, median:           {med(fan):,.0f} ms for {sessions:,} trades")
        out(f"  baseline bulk INSERT:      {med(base):,.0f} ms ({med(fan) / med(base):.1f}x)")
        out(f"  signal -> all open:        {med(to_open):,.0f} ms")
        out(f"  signal -> all settled:     {med(to_settle):,.0f} ms (incl. the {duration} s)")
        out(
            f"  queries of one fan-out:    {queries:,} for {sessions:,} sessions, "
            f"{tenth_queries:,} for {sessions // 10:,}"
        )

    def _baseline(self, count: int, batch: int) -> float:
        """N trade rows bulk-inserted in the fan-out's batches, then removed."""
        from trading_sessions.models import Trade, TradingSession

        rows = list(
            TradingSession.objects.filter(is_active=True)
            .order_by("pk")
            .values_list("pk", "user_id", "account_id")[:count]
        )
        now = timezone.now()
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            with transaction.atomic():
                Trade.objects.bulk_create(
                    Trade(
                        session_id=pk,
                        user_id=user_id,
                        account_id=account_id,
                        source="manual",
                        asset="EURUSD",
                        direction="call",
                        amount=Decimal("5.00"),
                        duration=60,
                        created_at=now,
                        result="failed",
                    )
                    for pk, user_id, account_id in rows[start : start + batch]
                )
        elapsed = (time.perf_counter() - started) * 1000
        Trade.objects.filter(source="manual", result="failed").delete()
        return elapsed

    def _fan_out(self, channel, expected: int):
        from trading_sessions.services import signal_receive

        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            outcome = signal_receive(channel=channel, asset="EURUSD", direction="call", duration=5)
        elapsed = (time.perf_counter() - started) * 1000
        if outcome.signal.trades_created != expected:
            raise CommandError(
                f"fan-out made {outcome.signal.trades_created} trades, expected {expected}"
            )
        return elapsed, len(captured), outcome.signal

    def _chunks(self, signal, result: str) -> list[list[int]]:
        from trading_sessions.models import Trade

        ids = list(
            Trade.objects.filter(signal=signal, result=result)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        size = settings.TRADING_OPEN_CHUNK
        return [ids[i : i + size] for i in range(0, len(ids), size)]

    def _drain(self, what: str, signal, workers: int) -> float:
        from trading_sessions.services import trades_open, trades_settle

        work = trades_open if what == "open" else trades_settle
        chunks = self._chunks(signal, "pending" if what == "open" else "open")

        def run(chunk):
            try:
                return work(trade_ids=chunk)
            finally:
                connection.close()

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, chunks))
        elapsed = (time.perf_counter() - started) * 1000
        left = sum(len(c) for c in self._chunks(signal, "pending" if what == "open" else "open"))
        if left:
            raise CommandError(f"{left} trades still not {what} after the workers ran")
        return elapsed

    def _settle_when_due(self, signal, workers: int, duration: int) -> float:
        from trading_sessions.models import Trade

        latest = Trade.objects.filter(signal=signal).order_by("-expires_at").first()
        # The fan-out made the trades and `_drain("open")` opened every one: each has an expiry.
        assert latest is not None and latest.expires_at is not None
        last = latest.expires_at
        wait = (last - timezone.now()).total_seconds()
        if wait > 0:
            time.sleep(wait + 0.05)  # a benchmark waits for the trades to run their time
        return self._drain("settle", signal, workers)

    def _settle_everything_now(self) -> None:
        """The warm-up round's trades are abandoned: the sessions take the next signal."""
        from trading_sessions.models import Trade, TradingSession

        Trade.objects.filter(result="pending").update(result="failed")
        TradingSession.objects.update(trade_in_flight=False)
