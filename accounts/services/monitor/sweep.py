"""Sweeps: the operators' full sweep in one process, and beat's, which fans the due batches out
to workers and is skipped while the last one still runs."""

import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from accounts.models import AccountEvent, MonitoredAccount
from accounts.services.parallel import in_threads, threads_for

from .backoff import OUTAGE_CACHE_KEY, _batch_failures, _batch_note, outage_note
from .batch import batch_ranges, monitor_batch
from .results import SweepResult, logger, server_name, sweep_record

SWEEP_LOCK_KEY = "monitor:sweep_lock"


def monitor_sweep(*, batch_size: int | None = None, dispatch: bool = True) -> SweepResult:
    """One full sweep of every active account, its batches in this process.

    What operators (`monitor_sweep`, `POST monitoring/sweep/`) and small installs run; the
    beat entry fans the same batches out to workers (`monitor_sweep_schedule`). On PostgreSQL
    `MONITOR_SWEEP_THREADS` batches run at once (each on its own database connection and,
    through the Web API, its own MT5 connection), their events dispatched together at the end.
    """
    started = time.perf_counter()
    result = SweepResult()
    ranges = batch_ranges(batch_size=batch_size)
    threads = threads_for(settings.MONITOR_SWEEP_THREADS, len(ranges))
    for part in in_threads(
        ranges,
        lambda batch: monitor_batch(
            first=batch[0], last=batch[1], dispatch=dispatch and threads == 1
        ),
        threads,
    ):
        result.add(part)
    if dispatch:
        # Also what an earlier run recorded but never handed over (a crash, a failure).
        from accounts.services.events import account_events_dispatch

        result.dispatched += account_events_dispatch().handled
    result.ms = round((time.perf_counter() - started) * 1000)
    sweep_record(result)
    return result


def monitor_sweep_schedule() -> str:
    """Beat's sweep, skipped while the last one still runs ("busy").

    The batches that are due (not backing off after a fault of their own) go to the workers
    as `accounts.monitor_batch` tasks, or run here when there is only one or fan-out is off.
    When every batch of a sweep failed the gateway is taken to be down: the sweep backs off
    ("backing-off") and then only probes, one batch at a time and each in turn; the first
    answer ends the outage and sends every batch at once. Then retries of events whose
    handling failed are dispatched as soon as they are due.
    """
    outage = cache.get(OUTAGE_CACHE_KEY)
    if outage and outage["until"] > time.time():
        return "backing-off"
    sweep_id = uuid.uuid4().hex
    if not cache.add(SWEEP_LOCK_KEY, sweep_id, timeout=settings.MONITOR_SWEEP_LOCK_SECONDS):
        return "busy"
    fanned_out = False
    try:
        ranges = batch_ranges()
        failures = _batch_failures(ranges)
        started = time.perf_counter()
        result = SweepResult()
        if outage and ranges:
            probe = ranges[outage["count"] % len(ranges)]
            result.add(_batch_run(*probe, failures=failures))
            if result.outages:
                outage_note(failed=True)
                return "unavailable"
            outage_note(failed=False)
            logger.warning("monitor: the MT5 gateway answers again; sweeping every batch")
            # The backoffs the outage left on the other batches do not hold them back.
            ranges = [batch for batch in ranges if batch != probe]
        elif ranges:
            now = time.time()
            due = [batch for batch in ranges if failures.get(batch[0], (0, 0))[1] <= now]
            if not due:
                return "backing-off"
            ranges = due
        if len(ranges) > 1 and settings.MONITOR_FAN_OUT:
            _fan_out(sweep_id, ranges, failures)
            fanned_out = True
            outcome = f"fanned-out:{len(ranges)}"
        else:
            for first, last in ranges:
                result.add(_batch_run(first, last, failures=failures))
            if result.batches and result.outages == result.batches:
                outage_note(failed=True)  # every batch failed: no sweep happened
                return "unavailable"
            outage_note(failed=False)
            result.ms = round((time.perf_counter() - started) * 1000)
            sweep_record(result)
            outcome = "swept"
    finally:
        if not fanned_out:
            _release(sweep_id)
    _dispatch_due()
    return outcome


def _batch_run(first: int, last: int, *, failures: dict[int, tuple[int, float]]) -> SweepResult:
    result = monitor_batch(first=first, last=last)
    _batch_note(first, before=failures.get(first, (0, 0))[0], failed=bool(result.outages))
    return result


def _fan_out(sweep_id: str, ranges: list[tuple[int, int]], failures: dict) -> None:
    from accounts.tasks import monitor_batch_task

    accounts = MonitoredAccount.objects.filter(
        server=server_name(), status=MonitoredAccount.Status.ACTIVE
    ).count()
    timeout = settings.MONITOR_SWEEP_LOCK_SECONDS
    cache.set(
        f"monitor:sweep:{sweep_id}",
        {"started": time.time(), "batches": len(ranges), "accounts": accounts},
        timeout=timeout,
    )
    cache.set_many(
        {f"monitor:sweep:{sweep_id}:done": 0, f"monitor:sweep:{sweep_id}:failed": 0},
        timeout=timeout,
    )
    for first, last in ranges:
        monitor_batch_task.apply_async(
            kwargs={
                "first": first,
                "last": last,
                "sweep_id": sweep_id,
                "failures": failures.get(first, (0, 0))[0],
            },
            expires=timeout,
        )


def monitor_batch_finished(
    *, sweep_id: str, result: SweepResult, first: int | None = None, failures: int = 0
) -> None:
    """A fanned-out batch is done: its own backoff is noted (any answer also ends an outage),
    and the last batch records the sweep and frees the schedule, or, when every batch
    failed, backs the sweep off."""
    failed = bool(result.outages)
    if first is not None:
        _batch_note(first, before=failures, failed=failed)
    if not failed:
        cache.delete(OUTAGE_CACHE_KEY)
    meta = cache.get(f"monitor:sweep:{sweep_id}")
    if not meta:
        return
    try:
        if failed:
            cache.incr(f"monitor:sweep:{sweep_id}:failed")
        done = cache.incr(f"monitor:sweep:{sweep_id}:done")
    except ValueError:
        return
    if done >= meta["batches"]:
        if (cache.get(f"monitor:sweep:{sweep_id}:failed") or 0) >= meta["batches"]:
            outage_note(failed=True)
        else:
            # The sweep's time and size; its event counts are in the batch tasks' results.
            total = SweepResult(accounts=meta["accounts"], batches=meta["batches"])
            total.ms = round((time.time() - meta["started"]) * 1000)
            sweep_record(total)
        _release(sweep_id)


def _release(sweep_id: str) -> None:
    if cache.get(SWEEP_LOCK_KEY) == sweep_id:
        cache.delete(SWEEP_LOCK_KEY)


def _dispatch_due() -> int:
    """Hand over the events whose retry is due (one query when there are none), so a failed
    event is tried again within a sweep of its backoff instead of at the next 10 s sweep of
    `accounts.dispatch_events`."""
    logins = list(
        AccountEvent.objects.filter(
            status=AccountEvent.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by()
        .values_list("login", flat=True)
        .distinct()[: settings.MONITOR_DISPATCH_LIMIT]
    )
    if not logins:
        return 0
    from accounts.services.events import account_events_dispatch

    return account_events_dispatch(logins=logins).handled
