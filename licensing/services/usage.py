"""The API usage log, off the request path.

The middleware opens a `UsageCall` when a call starts and hands it to `usage_enqueue` when the
answer is out: one RPUSH to Redis, or, without Redis (the embedded default, or Redis down),
one appended line in a spool file per process under LICENSE_USAGE_SPOOL_DIR. Validation
queues its call itself, in the Redis round trip of its rate limits (see `UsageCall`). Beat's
`licensing.flush_activity` runs `usage_flush`, which writes both in bounded batches with
`bulk_create` and sets each license's `last_active_at` to its newest call (one UPDATE): the
validation path itself never writes to the database.

A batch leaves Redis or the spool only once it is committed. Every text field is cleaned of
NUL and other control characters first (PostgreSQL text refuses NUL: one `GET /api/v1/x%00y/`
used to fail the insert of the whole window, which was already gone from the queue); if the
bulk insert still fails on a value, the rows go in one by one and only the refused ones are
dropped, counted and logged.
"""

import contextlib
import fcntl
import ipaddress
import json
import logging
import math
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from core.money import MAX_BIGINT

from ..models import ApiUsageLog, License
from ..redis_client import activity_redis

logger = logging.getLogger(__name__)
QUEUE = "licensing:usage"
BATCH = 1000
LAST_ACTIVE_CHUNK = 5000  # licenses per UPDATE (two parameters each)
_warned = False


@dataclass
class UsageCall:
    """One API call on its way, opened by the middleware when it starts.

    A step that talks to Redis anyway may queue the call itself in that same round trip
    (validation does, in its rate-limit script): it queues `entry()` with the status it knows
    the answer will have and sets `queued_status`. The middleware then queues nothing,
    unless the answer ends with another status (a failure after that point), which it logs
    as well. Such a call's `response_ms` runs to that round trip, not to the last byte.
    """

    started: float  # time.perf_counter() at the start
    endpoint: str
    method: str
    ip: str | None
    user_agent: str
    queued_status: int | None = None

    @classmethod
    def start(cls, request) -> "UsageCall":
        return cls(
            started=time.perf_counter(),
            endpoint=request.path[:255],
            method=request.method,
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:255],
        )

    def entry(self, *, status_code=None, license_id=None, user_id=None) -> dict:
        """The queued form (see `usage_enqueue`), timed up to now."""
        return {
            "at": time.time(),
            "endpoint": self.endpoint,
            "method": self.method,
            "status_code": status_code,
            "response_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "ip": self.ip,
            "user_agent": self.user_agent,
            "license_id": license_id,
            "user_id": user_id,
        }


def usage_enqueue(entry: dict) -> None:
    """Queue one call: {at (unix), endpoint, method, status_code, response_ms, ip,
    user_agent, license_id, user_id}."""
    global _warned
    line = json.dumps(entry, separators=(",", ":"))
    client = activity_redis()
    if client is not None:
        try:
            client.rpush(QUEUE, line)
            return
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if not _warned:
                _warned = True
                logger.warning(
                    "usage log: Redis did not answer, spooling to files",
                    extra={"error": str(exc)},
                )
    _spool_append(line)


def _spool_path() -> Path:
    return Path(settings.LICENSE_USAGE_SPOOL_DIR) / f"usage-{os.getpid()}.jsonl"


def _spool_append(line: str) -> None:
    path = _spool_path()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # The flusher renames the file and then takes this lock: if it was renamed
            # while we waited, our line would be lost with it; write to a fresh file instead.
            if os.fstat(fd).st_nlink == 0 or not _same_file(fd, path):
                continue
            os.write(fd, (line + "\n").encode())
            return
        finally:
            os.close(fd)
    logger.warning("usage log: could not spool a line", extra={"path": str(path)})


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


# Redis: one flusher at a time holds this lock; it reads a batch from the head of the queue,
# commits it, and only then trims it off (in one script that checks it still holds the lock,
# so a flusher whose lock ran out can never trim what another has not written).
FLUSH_LOCK = "licensing:usage:flush-lock"
FLUSH_LOCK_SECONDS = 120  # over the task's hard time limit: a killed flusher only delays
MAX_BATCHES = 20  # per flush from Redis; what is left waits for the next one
_TRIM_IF_OWNER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_REDIS_ERRORS = (redis.RedisError, OSError)
# What one row can do to an INSERT (PostgreSQL refusing a value, a bad type): that row is
# dropped. Anything else (the database down, a missing table) keeps the whole batch queued.
_ROW_ERRORS = (DataError, IntegrityError, ValueError, TypeError, OverflowError)
# NUL (PostgreSQL text refuses it), other control characters, and unpaired surrogates (which
# UTF-8 cannot hold) never reach a column.
_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_TEXT_LIMITS = {"endpoint": 255, "method": 10, "user_agent": 255}
_MAX_SMALLINT = 32767


@dataclass
class _Written:
    calls: int = 0
    dropped: int = 0
    licenses: set = field(default_factory=set)


def usage_clean_text(value: object, *, max_length: int) -> str:
    """Text as a usage row may hold it: no control characters, NUL or lone surrogates, cut
    to the column."""
    if value is None:
        return ""
    return _UNSTORABLE.sub("", str(value))[:max_length]


def _optional_id(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_BIGINT:
        return value
    return None


def _ip(value: object) -> str | None:
    """An address PostgreSQL's inet takes: valid, without an IPv6 zone (`fe80::1%eth0`)."""
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value.split("%", 1)[0]))
    except ValueError:
        return None


def usage_row(entry: object) -> ApiUsageLog:
    """The row for one queued call, every text field cleaned; ValueError when the entry is
    not a call at all (no time, no status)."""
    if not isinstance(entry, dict):
        raise ValueError("not a usage entry")
    at, status_code = entry.get("at"), entry.get("status_code")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise ValueError("no time")
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        raise ValueError("no status")
    if not 0 <= status_code <= _MAX_SMALLINT:
        raise ValueError("status out of range")
    response_ms = entry.get("response_ms")
    if isinstance(response_ms, bool) or not isinstance(response_ms, int | float):
        response_ms = 0.0
    return ApiUsageLog(
        created_at=datetime.fromtimestamp(at, tz=UTC),  # OverflowError/OSError: out of range
        status_code=status_code,
        response_ms=float(response_ms) if math.isfinite(response_ms) else 0.0,
        ip=_ip(entry.get("ip")),
        license_id=_optional_id(entry.get("license_id")),
        user_id=_optional_id(entry.get("user_id")),
        **{
            name: usage_clean_text(entry.get(name), max_length=limit)
            for name, limit in _TEXT_LIMITS.items()
        },
    )


def _newest_per_license(rows: list[ApiUsageLog]) -> dict[int, datetime]:
    newest: dict[int, datetime] = {}
    for row in rows:
        if row.license_id and (
            row.license_id not in newest or row.created_at > newest[row.license_id]
        ):
            newest[row.license_id] = row.created_at
    return newest


def _write(lines: list, written: _Written) -> None:
    """Insert the calls of `lines` (queued JSON) and advance last_active_at, in one
    transaction. A line that is no call, or a row the database refuses, is dropped, counted
    and logged; the rest are written. Raises (and commits nothing) only when the database
    itself fails: the caller then keeps the lines for the next flush."""
    rows: list[ApiUsageLog] = []
    for line in lines:
        try:
            rows.append(usage_row(json.loads(line)))
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            _dropped(written, reason=str(exc), line=line)
    try:
        with transaction.atomic():
            ApiUsageLog.objects.bulk_create(rows, batch_size=BATCH // 10)
            _last_active_advance(_newest_per_license(rows))
    except _ROW_ERRORS:
        logger.warning("usage flush: the bulk insert failed; inserting one by one", exc_info=True)
    else:
        written.calls += len(rows)
        written.licenses.update(row.license_id for row in rows if row.license_id)
        return
    kept: list[ApiUsageLog] = []
    with transaction.atomic():
        for row in rows:
            try:
                with transaction.atomic():  # a savepoint: one refused row spoils nothing else
                    ApiUsageLog.objects.bulk_create([row])
            except _ROW_ERRORS as exc:
                _dropped(written, reason=str(exc), line=row.endpoint)
            else:
                kept.append(row)
        _last_active_advance(_newest_per_license(kept))
    written.calls += len(kept)
    written.licenses.update(row.license_id for row in kept if row.license_id)


def _dropped(written: _Written, *, reason: str, line: object) -> None:
    written.dropped += 1
    logger.warning(
        "usage flush: dropped a call that cannot be stored",
        extra={"reason": reason[:200], "call": repr(line)[:200]},
    )


def _flush_redis(written: _Written) -> None:
    client = activity_redis()
    if client is None:
        return
    token = uuid.uuid4().hex
    try:
        if not client.set(FLUSH_LOCK, token, nx=True, ex=FLUSH_LOCK_SECONDS):
            return  # another flush is draining the queue
    except _REDIS_ERRORS:
        logger.warning("usage flush: Redis did not answer; spooled calls only", exc_info=True)
        return
    try:
        for _ in range(MAX_BATCHES):
            lines = client.lrange(QUEUE, 0, BATCH - 1)
            if not lines:
                return
            _write(lines, written)
            # Committed: now, and only now, the batch leaves the queue.
            trim = client.eval(
                _TRIM_IF_OWNER, 2, FLUSH_LOCK, QUEUE, token, len(lines), FLUSH_LOCK_SECONDS
            )
            if not trim:
                logger.warning("usage flush: the flush lock ran out; stopping this flush")
                return
            if len(lines) < BATCH:
                return
    except _REDIS_ERRORS:
        logger.warning("usage flush: Redis failed mid-flush; the batch stays queued", exc_info=True)
    finally:
        with contextlib.suppress(*_REDIS_ERRORS):  # else it runs out on its own
            client.eval(_RELEASE_IF_OWNER, 1, FLUSH_LOCK, token)


def _flush_spool(written: _Written) -> None:
    """Each spool file is claimed by a rename, written in one transaction and deleted only
    after that commits. A claimed file left by a flush that failed (or died) is taken up
    again by the next one; the flock says whether a live flusher is still on it."""
    folder = Path(settings.LICENSE_USAGE_SPOOL_DIR)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("usage-*.jsonl")):
        claimed = path.with_name(f".flushing-{uuid.uuid4().hex}")
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue
        _flush_claimed(claimed, written, wait=True)  # writers in flight finish first
    for claimed in sorted(folder.glob(".flushing-*")):
        _flush_claimed(claimed, written, wait=False)  # a live flusher holds it: skip


def _flush_claimed(claimed: Path, written: _Written, *, wait: bool) -> None:
    try:
        handle = claimed.open("rb")
    except FileNotFoundError:
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        if not _same_file(handle.fileno(), claimed):
            return  # another flusher wrote and deleted it while we waited
        lines = [raw for raw in handle if raw.strip()]
        _write(lines, written)
        claimed.unlink()


def usage_flush() -> dict:
    """Write queued calls in bulk and advance licenses' last_active_at; return counts.

    Nothing leaves the queue or the spool before it is committed (a crash or a database
    fault means the next flush writes it, at worst twice, never not at all). A call the
    database refuses is dropped alone, counted in `dropped` and logged."""
    written = _Written()
    _flush_redis(written)
    _flush_spool(written)
    return {"calls": written.calls, "licenses": len(written.licenses), "dropped": written.dropped}


def _last_active_advance(last_active: dict[int, datetime]) -> None:
    """Set each license's last_active_at to its newest call, never back: one UPDATE joined
    to the values (per LAST_ACTIVE_CHUNK licenses), not one per license. Plain SQL that
    PostgreSQL and SQLite (3.33+) both run; VALUES columns are column1, column2 in both."""
    table = connection.ops.quote_name(License._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    items = sorted(last_active.items())  # primary-key order: concurrent flushes cannot deadlock
    for start in range(0, len(items), LAST_ACTIVE_CHUNK):
        chunk = items[start : start + LAST_ACTIVE_CHUNK]
        rows = ", ".join(["(%s, %s)"] * len(chunk))
        params = [value for pk, at in chunk for value in (pk, adapt(at))]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET last_active_at = v.column2 "  # noqa: S608 (our own names)
                f"FROM (VALUES {rows}) AS v "
                f"WHERE {table}.id = v.column1 "
                f"AND ({table}.last_active_at IS NULL OR {table}.last_active_at < v.column2)",
                params,
            )


def usage_purge(*, days: int | None = None, batch: int = 10_000) -> int:
    """Delete calls older than the retention (LICENSE_USAGE_RETENTION_DAYS), in batches."""
    cutoff = timezone.now() - timedelta(days=days or settings.LICENSE_USAGE_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            ApiUsageLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += ApiUsageLog.objects.filter(pk__in=ids).delete()[0]
