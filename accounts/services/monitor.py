"""The account monitor: turns what happens on MT5 accounts into recorded `AccountEvent`s.

A sweep walks the active monitored logins in batches (`MONITOR_BATCH_SIZE`). Per batch:

1. one query for the stored snapshots, one gateway call for every account's state
   (`get_states`), compared in memory: a quiet account costs no further work;
2. one batched `get_deals` call, only for accounts whose balance or credit moved, each from
   its own deal cursor;
3. one short transaction that locks the changed rows, classifies their new deals into events
   and advances snapshot and cursor together with the events they produced;
4. after the commit, the new events are dispatched (`accounts.services.events`).

Overlapping sweeps are harmless: the write phase re-reads the locked rows, a deal is recorded
once (unique on server + ticket) and a snapshot never moves back in time. A transient fault
blames no account and delays only what it hit: a read refused quickly is asked again within
the batch (`MONITOR_CALL_RETRIES`); a batch whose states still cannot be read writes nothing
and backs off on its own (jittered, at most `MONITOR_BATCH_BACKOFF_MAX_SECONDS`) while the
other batches go on; accounts whose deals cannot be read stay where they were, to be re-read
next sweep, while the rest of their batch advances. Only when every batch fails (the gateway
is down) does the scheduled sweep back off, to one probing batch at a time, and the first
answer ends it. An account the server does not answer for (or whose data cannot be
processed) counts an error, and `MONITOR_PAUSE_AFTER_ERRORS` in a row pause it until staff
reset it.
"""

import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from accounts.models import AccountEvent, MonitoredAccount
from accounts.signals import own_operation_comments
from core.errors import ApplicationError, ConflictError, NotFoundError
from gateways.errors import GatewayError, PermanentGatewayError
from gateways.mt5 import AccountState, DealAction, DealEntry, MT5Deal, get_mt5_gateway

from .audit import audit_record
from .parallel import in_threads, threads_for

logger = logging.getLogger(__name__)

TRADE_ACTIONS = frozenset({DealAction.BUY, DealAction.SELL})
CLOSING_ENTRIES = frozenset({DealEntry.OUT, DealEntry.INOUT})
SNAPSHOT_FIELDS = ("balance", "credit", "equity", "leverage")
# Only these write anything: the rest of a quiet sweep is reads.
WRITE_FIELDS = [
    *SNAPSHOT_FIELDS,
    "state_at",
    "deal_cursor",
    "consecutive_errors",
    "last_error",
    "status",
    "paused_at",
    "last_polled_at",
    "last_changed_at",
]

STATUS_CACHE_KEY = "monitor:last_sweep"
SWEEPS_CACHE_KEY = "monitor:sweeps_total"
OUTAGE_CACHE_KEY = "monitor:outage"
SWEEP_LOCK_KEY = "monitor:sweep_lock"
BATCH_BACKOFF_KEY = "monitor:batch_backoff:{first}"


@dataclass
class SweepResult:
    """Counts of one sweep (or one batch of it); the contract's `monitoring/sweep/` answer."""

    accounts: int = 0
    changed: int = 0
    deposits: int = 0
    withdrawals: int = 0
    drawdowns: int = 0
    trades: int = 0
    errors: int = 0
    paused: int = 0
    batches: int = 0
    outages: int = 0
    dispatched: int = 0
    ms: int = 0
    logins_with_events: set[int] = field(default_factory=set, repr=False)

    def add(self, other: "SweepResult") -> None:
        for name in (
            "accounts",
            "changed",
            "deposits",
            "withdrawals",
            "drawdowns",
            "trades",
            "errors",
            "paused",
            "batches",
            "outages",
            "dispatched",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.logins_with_events |= other.logins_with_events

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("logins_with_events")
        return data


def server_name() -> str:
    """The MT5 server the monitor watches (rows and events are keyed by it)."""
    return settings.MT5_SERVER


# --- Sweeps ------------------------------------------------------------------------------------


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
        from .events import account_events_dispatch

        result.dispatched += account_events_dispatch().handled
    result.ms = round((time.perf_counter() - started) * 1000)
    sweep_record(result)
    return result


def batch_ranges(*, batch_size: int | None = None) -> list[tuple[int, int]]:
    """The active logins cut into (first, last) ranges of `batch_size` accounts."""
    size = batch_size or settings.MONITOR_BATCH_SIZE
    logins = list(
        MonitoredAccount.objects.filter(server=server_name(), status=MonitoredAccount.Status.ACTIVE)
        .order_by("login")
        .values_list("login", flat=True)
    )
    return [
        (logins[start], logins[min(start + size, len(logins)) - 1])
        for start in range(0, len(logins), size)
    ]


def monitor_batch(*, first: int, last: int, dispatch: bool = True) -> SweepResult:
    """Sweep the active accounts with `first <= login <= last` (see the module docstring)."""
    result = SweepResult(batches=1)
    server = server_name()
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.MONITOR_POLL_STAMP_SECONDS)
    # The database says whether the poll stamp is stale: loading 1,000 datetimes into Python
    # would cost more than the rest of a quiet batch.
    stale = ExpressionWrapper(
        Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=stale_before),
        output_field=BooleanField(),
    )
    rows = list(
        MonitoredAccount.objects.filter(
            server=server,
            status=MonitoredAccount.Status.ACTIVE,
            login__gte=first,
            login__lte=last,
        )
        .annotate(stale=stale)
        .order_by()
        .values_list(*("login", *SNAPSHOT_FIELDS, "consecutive_errors", "stale"))
    )
    result.accounts = len(rows)
    if not rows:
        return result
    gateway = get_mt5_gateway()
    try:
        states, failed = _isolating(_retrying(gateway.get_states), [row[0] for row in rows])
    except GatewayError as exc:
        if isinstance(exc, PermanentGatewayError):
            raise
        # Unavailable for this batch: nothing is written and no account is blamed; the
        # schedule retries this batch after a short backoff.
        logger.info("monitor batch %s-%s: gateway unavailable (%s)", first, last, exc)
        result.outages = 1
        return result
    state_at = timezone.now()
    changed: dict[int, AccountState] = {}
    money_moved: list[int] = []
    errors: dict[int, str] = dict(failed)
    recovered: list[int] = []
    stamp: list[int] = []
    for login, balance, credit, equity, leverage, error_count, is_stale in rows:
        state = states.get(login)
        if state is None:
            errors.setdefault(login, "the server does not know this login")
        elif (balance, credit, equity, leverage) != state:
            changed[login] = state
            if balance != state.balance or credit != state.credit:
                money_moved.append(login)
        elif error_count:
            recovered.append(login)
        elif is_stale:
            stamp.append(login)
    deals, deferred = _new_deals(gateway, money_moved, errors)
    own = _own_comments(deals)
    # Without their deals these accounts' new numbers would swallow a deposit: they keep
    # their snapshot and are compared again next sweep. Neither they nor the batch are blamed.
    for login in (*errors, *deferred):
        changed.pop(login, None)
    with transaction.atomic():
        events = _write(
            server=server,
            changed=changed,
            deals=deals,
            own=own,
            errors=errors,
            recovered=recovered,
            state_at=state_at,
            now=now,
            result=result,
        )
        if stamp:
            MonitoredAccount.objects.filter(server=server, login__in=stamp).update(
                last_polled_at=now
            )
    result.changed = len(changed)
    for event in events:
        _count(result, event.kind)
        result.logins_with_events.add(event.login)
    if dispatch and result.logins_with_events:
        from .events import account_events_dispatch

        result.dispatched = account_events_dispatch(logins=result.logins_with_events).handled
    return result


def _isolating(call: Callable, logins: Sequence[int]) -> tuple[dict, dict[int, str]]:
    """`call(logins)`; when the server refuses the batch outright, halve it until the logins
    it refuses are found, so one bad account does not blind the monitor to its neighbours."""
    try:
        return call(logins), {}
    except PermanentGatewayError as exc:
        if len(logins) == 1:
            return {}, {logins[0]: f"{exc.code}: {exc}"}
    middle = len(logins) // 2
    left, left_failed = _isolating(call, logins[:middle])
    right, right_failed = _isolating(call, logins[middle:])
    return {**left, **right}, {**left_failed, **right_failed}


def _retrying(call: Callable) -> Callable:
    """`call`, asked again after a transient error that came back quickly (a refusal, a 5xx:
    not a timeout, which would only make the batch slower), at most `MONITOR_CALL_RETRIES`
    times, after a jittered pause from `MONITOR_CALL_RETRY_SECONDS` that doubles each time."""

    def attempt(logins: Sequence[int]):
        for retry in range(settings.MONITOR_CALL_RETRIES + 1):
            started = time.perf_counter()
            try:
                return call(logins)
            except PermanentGatewayError:
                raise
            except GatewayError:
                slow = time.perf_counter() - started > settings.MONITOR_SWEEP_SECONDS
                if slow or retry == settings.MONITOR_CALL_RETRIES:
                    raise
            time.sleep(settings.MONITOR_CALL_RETRY_SECONDS * 2**retry * random.uniform(0.5, 1))
        raise AssertionError("unreachable")  # pragma: no cover

    return attempt


def _new_deals(
    gateway, logins: list[int], errors: dict[int, str]
) -> tuple[dict[int, list[MT5Deal]], set[int]]:
    """The deals after each login's cursor, at most two calls: accounts that have a cursor,
    and accounts that never had one (asked only from their `watch_from`). Also the logins
    whose deals the server could not give now (a transient error): they are re-read later."""
    if not logins:
        return {}, set()
    cursors = dict(
        MonitoredAccount.objects.filter(server=server_name(), login__in=logins).values_list(
            "login", "deal_cursor"
        )
    )
    fresh = [login for login in logins if not cursors.get(login)]
    since = None
    if fresh:
        since = (
            MonitoredAccount.objects.filter(server=server_name(), login__in=fresh)
            .order_by("watch_from")
            .values_list("watch_from", flat=True)
            .first()
        )
    by_login: dict[int, list[MT5Deal]] = {}
    deferred: set[int] = set()
    for group, group_since in (([x for x in logins if cursors.get(x)], None), (fresh, since)):
        if not group:
            continue

        def query(chunk: Sequence[int], group_since=group_since) -> dict[int, list[MT5Deal]]:
            found: dict[int, list[MT5Deal]] = defaultdict(list)
            deals = gateway.get_deals(
                cursors={login: cursors.get(login, 0) for login in chunk}, since=group_since
            )
            for deal in deals:
                found[deal.login].append(deal)
            return found

        try:
            found, failed = _isolating(_retrying(query), group)
        except GatewayError as exc:  # never permanent: `_isolating` takes those apart
            logger.info("monitor: deals of %s accounts deferred (%s)", len(group), exc)
            deferred.update(group)
            continue
        errors.update(failed)
        by_login.update(found)
    return by_login, deferred


def _own_comments(deals: dict[int, list[MT5Deal]]) -> set[str]:
    comments = {deal.comment for items in deals.values() for deal in items if deal.comment}
    if not comments:
        return set()
    own: set[str] = set()
    for _receiver, answer in own_operation_comments.send(
        sender=MonitoredAccount, comments=comments
    ):
        own |= set(answer or ())
    return own


def _write(
    *,
    server: str,
    changed: dict[int, AccountState],
    deals: dict[int, list[MT5Deal]],
    own: set[str],
    errors: dict[int, str],
    recovered: list[int],
    state_at: datetime,
    now: datetime,
    result: SweepResult,
) -> list[AccountEvent]:
    """Lock the rows this batch changes (login order: no deadlocks between sweeps), record the
    events against what the locked rows say, advance snapshots and cursors with them."""
    touched = sorted({*changed, *errors, *recovered})
    if not touched:
        return []
    locked = (
        MonitoredAccount.objects.select_for_update()
        .filter(server=server, login__in=touched)
        .order_by("login")
    )
    events: list[AccountEvent] = []
    updated: list[MonitoredAccount] = []
    for row in locked:
        login = row.login
        if login in errors:
            _count_error(row, errors[login], now=now, result=result)
            updated.append(row)
            continue
        row.consecutive_errors, row.last_error = 0, ""
        row.last_polled_at = now
        if login in changed:
            try:
                events.extend(_classify(row, changed[login], deals.get(login, ()), own, state_at))
            except Exception as exc:  # one account's odd data must not stop its batch
                logger.exception("monitor could not process account %s", login)
                row.refresh_from_db()
                _count_error(row, f"processing failed: {exc}", now=now, result=result)
        updated.append(row)
    AccountEvent.objects.bulk_create(events, ignore_conflicts=True)
    MonitoredAccount.objects.bulk_update(updated, WRITE_FIELDS)
    return events


def _count_error(row: MonitoredAccount, error: str, *, now: datetime, result: SweepResult) -> None:
    """One more error in a row; the one that reaches the threshold pauses (and warns once)."""
    row.consecutive_errors += 1
    row.last_error = error[:500]
    result.errors += 1
    paused = row.consecutive_errors >= settings.MONITOR_PAUSE_AFTER_ERRORS
    if paused and row.status == MonitoredAccount.Status.ACTIVE:
        row.status, row.paused_at = MonitoredAccount.Status.PAUSED, now
        result.paused += 1
        logger.warning(
            "monitor paused account %s after %s errors in a row: %s",
            row.login,
            row.consecutive_errors,
            row.last_error,
        )


def _classify(
    row: MonitoredAccount,
    state: AccountState,
    deals: Iterable[MT5Deal],
    own: set[str],
    state_at: datetime,
) -> list[AccountEvent]:
    """The events one account's new deals and new state mean; moves `row` forward.

    Balance deals are deposits and withdrawals, unless they are the system's own (their
    comment is one of its operation ids). Closing trade deals feed Type C conversion. Trading
    profit, swaps, commissions, charges, corrections, credit and stop-out compensation never
    become deposits or withdrawals. Equity falling to the credit is a drawdown, once per fall.
    """
    events: list[AccountEvent] = []
    running = row.balance  # the balance just before each deal, for the withdrawal rule
    cursor = row.deal_cursor
    base = {"server": row.server, "login": row.login}
    for deal in sorted(deals, key=lambda item: item.ticket):
        if deal.ticket <= cursor:
            continue  # an overlapping sweep took it into account already
        cursor = deal.ticket
        if deal.time < row.watch_from:
            continue  # history from before the monitor watched this account
        is_own = deal.comment in own
        if deal.action == DealAction.BALANCE and deal.profit and not is_own:
            kind = AccountEvent.Kind.DEPOSIT if deal.profit > 0 else AccountEvent.Kind.WITHDRAWAL
            events.append(
                AccountEvent(
                    **base,
                    kind=kind,
                    ticket=deal.ticket,
                    amount=abs(deal.profit),
                    balance_before=running,
                    comment=deal.comment[:64],
                    occurred_at=deal.time,
                )
            )
        elif deal.action in TRADE_ACTIONS and deal.entry in CLOSING_ENTRIES and not is_own:
            events.append(
                AccountEvent(
                    **base,
                    kind=AccountEvent.Kind.TRADE,
                    ticket=deal.ticket,
                    amount=deal.profit,
                    lots=deal.volume,
                    comment=deal.comment[:64],
                    occurred_at=deal.time,
                )
            )
        if deal.action != DealAction.CREDIT:
            running += deal.profit
    was_in_drawdown = row.credit > 0 and row.equity <= row.credit
    if row.state_at is None or row.state_at <= state_at:
        now_in_drawdown = state.credit > 0 and state.equity <= state.credit
        if now_in_drawdown and not was_in_drawdown:
            events.append(
                AccountEvent(
                    **base,
                    kind=AccountEvent.Kind.DRAWDOWN,
                    equity=state.equity,
                    credit=state.credit,
                    occurred_at=state_at,
                )
            )
        row.balance, row.credit, row.equity, row.leverage = state
        row.state_at = state_at
        row.last_changed_at = state_at
    row.deal_cursor = cursor
    return events


def _count(result: SweepResult, kind: str) -> None:
    name = {
        AccountEvent.Kind.DEPOSIT: "deposits",
        AccountEvent.Kind.WITHDRAWAL: "withdrawals",
        AccountEvent.Kind.DRAWDOWN: "drawdowns",
        AccountEvent.Kind.TRADE: "trades",
    }.get(kind)
    if name:
        setattr(result, name, getattr(result, name) + 1)


# --- The beat entry: fan out, back off -------------------------------------------------------


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


def _backoff_seconds(failures: int, cap: float) -> float:
    """After `failures` in a row: a sweep period doubled each time, capped, jittered down to
    half (so batches that failed together do not come back together)."""
    delay = min(settings.MONITOR_SWEEP_SECONDS * 2 ** (failures - 1), cap)
    return delay * random.uniform(0.5, 1.0)


def _batch_failures(ranges: list[tuple[int, int]]) -> dict[int, tuple[int, float]]:
    """The batches that failed lately: first login -> (failures in a row, not before);
    one cache round trip."""
    if not ranges:
        return {}
    keys = {BATCH_BACKOFF_KEY.format(first=first): first for first, _ in ranges}
    found = cache.get_many(list(keys))
    return {keys[key]: (value["count"], value["until"]) for key, value in found.items()}


def _batch_note(first: int, *, before: int, failed: bool) -> None:
    """Back one batch off after a fault of its own (`MONITOR_BATCH_BACKOFF_MAX_SECONDS` at
    most); an answer ends its backoff. The record expires a minute after it."""
    key = BATCH_BACKOFF_KEY.format(first=first)
    if not failed:
        if before:
            cache.delete(key)
        return
    count = before + 1
    delay = _backoff_seconds(count, settings.MONITOR_BATCH_BACKOFF_MAX_SECONDS)
    cache.set(key, {"count": count, "until": time.time() + delay}, timeout=int(delay) + 60)


def outage_note(*, failed: bool) -> None:
    """The scheduled sweep's backoff while every batch fails (the gateway is down), capped at
    `MONITOR_OUTAGE_MAX_SECONDS` and jittered; an answer ends it."""
    if not failed:
        cache.delete(OUTAGE_CACHE_KEY)
        return
    previous = cache.get(OUTAGE_CACHE_KEY) or {"count": 0}
    count = previous["count"] + 1
    delay = _backoff_seconds(count, settings.MONITOR_OUTAGE_MAX_SECONDS)
    cache.set(OUTAGE_CACHE_KEY, {"count": count, "until": time.time() + delay}, timeout=None)
    if count == 1:
        logger.warning(
            "monitor: every batch failed, the MT5 gateway looks down; the sweep probes one "
            "batch at a time, at most %ss apart",
            settings.MONITOR_OUTAGE_MAX_SECONDS,
        )


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
    from .events import account_events_dispatch

    return account_events_dispatch(logins=logins).handled


def sweep_record(result: SweepResult) -> None:
    """Leave the last sweep's time and counts where `monitoring/status/` and /metrics read."""
    data = result.as_dict()
    data["at"] = timezone.now().isoformat()
    cache.set(STATUS_CACHE_KEY, data, timeout=None)
    if not cache.add(SWEEPS_CACHE_KEY, 1, timeout=None):
        try:
            cache.incr(SWEEPS_CACHE_KEY)
        except ValueError:
            cache.set(SWEEPS_CACHE_KEY, 1, timeout=None)


# --- Discovery and staff actions --------------------------------------------------------------


def monitor_discover(*, batch_size: int | None = None) -> int:
    """Register every login on the server that is not monitored yet; return how many.

    An account registered within `MONITOR_REGISTRATION_WINDOW_HOURS` is new to the broker: it
    gets a registration event and is watched from its registration (its first deposit counts).
    An older one, found when the monitor starts on an existing server, is watched from now.
    """
    gateway = get_mt5_gateway()
    server = server_name()
    known = set(MonitoredAccount.objects.filter(server=server).values_list("login", flat=True))
    new = [login for login in gateway.list_logins() if login not in known]
    size = batch_size or settings.MONITOR_BATCH_SIZE
    registered = 0
    for start in range(0, len(new), size):
        accounts = gateway.get_accounts(new[start : start + size])
        registered += _register(accounts.values(), server=server)
    if registered:
        logger.info("monitor discovered %s new accounts", registered)
    return registered


def _register(accounts, *, server: str) -> int:
    now = timezone.now()
    window = now - timedelta(hours=settings.MONITOR_REGISTRATION_WINDOW_HOURS)
    rows, events = [], []
    for account in accounts:
        recent = account.registered_at >= window
        row = MonitoredAccount(
            server=server,
            login=account.login,
            registered_at=account.registered_at,
            watch_from=account.registered_at if recent else now,
            last_polled_at=now,
        )
        if not recent:
            row.balance, row.credit = account.balance, account.credit
            row.equity, row.leverage, row.state_at = account.equity, account.leverage, now
        else:
            events.append(
                AccountEvent(
                    server=server,
                    login=account.login,
                    kind=AccountEvent.Kind.REGISTRATION,
                    occurred_at=account.registered_at,
                )
            )
        rows.append(row)
    with transaction.atomic():
        created = MonitoredAccount.objects.bulk_create(rows, ignore_conflicts=True)
        AccountEvent.objects.bulk_create(events, ignore_conflicts=True)
    return len(created)


def monitor_register(*, login: int, actor=None) -> MonitoredAccount:
    """Staff register one login by hand (idempotent); 404 if the server does not know it."""
    server = server_name()
    existing = MonitoredAccount.objects.filter(server=server, login=login).first()
    if existing is not None:
        return existing
    accounts = get_mt5_gateway().get_accounts([login])
    if login not in accounts:
        raise NotFoundError(f"MT5 account {login} not found.", code="account_not_found")
    _register([accounts[login]], server=server)
    row = MonitoredAccount.objects.get(server=server, login=login)
    audit_record(action="monitor.registered", obj=row, actor=actor, mt5_login=login)
    return row


def monitor_reset_errors(*, login: int, actor=None) -> MonitoredAccount:
    """Resume a paused account: active again, errors cleared, audited."""
    with transaction.atomic():
        row = (
            MonitoredAccount.objects.select_for_update()
            .filter(server=server_name(), login=login)
            .first()
        )
        if row is None:
            raise NotFoundError(f"MT5 account {login} is not monitored.", code="not_monitored")
        before = {"status": row.status, "consecutive_errors": row.consecutive_errors}
        row.status = MonitoredAccount.Status.ACTIVE
        row.consecutive_errors, row.last_error, row.paused_at = 0, "", None
        row.save(update_fields=["status", "consecutive_errors", "last_error", "paused_at"])
        audit_record(
            action="monitor.errors_reset",
            obj=row,
            actor=actor,
            mt5_login=login,
            before=before,
            after={"status": row.status, "consecutive_errors": 0},
        )
    return row


def monitor_test_deal(*, login: int, amount: Decimal, actor=None) -> int:
    """Post a balance deal (positive: deposit, negative: withdrawal) on the server for testing
    the pipeline end to end; the monitor detects it like any other. Returns the deal ticket.

    A withdrawal beyond the balance is the caller's to fix: 409 `insufficient_balance`.
    """
    if amount == 0:
        raise ApplicationError("The amount must not be zero.", code="invalid_amount")
    row = MonitoredAccount.objects.filter(server=server_name(), login=login).first()
    if row is None:
        raise NotFoundError(f"MT5 account {login} is not monitored.", code="not_monitored")
    label = "test deposit" if amount > 0 else "test withdrawal"
    try:
        ticket = get_mt5_gateway().post_balance(login, amount, comment=label)
    except PermanentGatewayError as exc:
        if exc.code != "insufficient_balance":
            raise
        raise ConflictError(str(exc), code=exc.code) from exc
    audit_record(
        action=f"monitor.{label.replace(' ', '_')}",
        obj=row,
        actor=actor,
        mt5_login=login,
        after={"amount": str(amount), "deal_id": ticket},
    )
    return ticket
