"""The API usage log, off the request path.

The middleware opens a `UsageCall` when a call starts and hands it to `usage_enqueue` when the
answer is out: one RPUSH to Redis, or, without Redis (the embedded default, or Redis down),
one appended line in a spool file per process under LICENSE_USAGE_SPOOL_DIR. Validation
queues its call itself, in the Redis round trip of its rate limits (see `UsageCall`). Beat's
`licensing.flush_activity` runs `usage_flush`, which drains both in bounded batches with
`bulk_create` and sets each license's `last_active_at` to its newest call (one UPDATE): the
validation path itself never writes to the database.
"""

import fcntl
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ..models import ApiUsageLog, License
from ..redis_client import activity_redis

logger = logging.getLogger(__name__)
QUEUE = "licensing:usage"
BATCH = 1000
LAST_ACTIVE_CHUNK = 5000  # licenses per UPDATE (two parameters each)
_FIELDS = ("endpoint", "method", "status_code", "response_ms", "ip", "user_agent")
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


def _drain_redis() -> list[dict]:
    client = activity_redis()
    if client is None:
        return []
    entries: list[dict] = []
    try:
        while len(entries) < BATCH * 20:
            pipe = client.pipeline(transaction=True)
            pipe.lrange(QUEUE, 0, BATCH - 1)
            pipe.ltrim(QUEUE, BATCH, -1)
            lines, _ = pipe.execute()
            entries.extend(json.loads(line) for line in lines)
            if len(lines) < BATCH:
                break
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        logger.warning("usage flush: Redis did not answer; spooled calls only", exc_info=True)
    return entries


def _drain_spool() -> list[dict]:
    folder = Path(settings.LICENSE_USAGE_SPOOL_DIR)
    if not folder.is_dir():
        return []
    entries: list[dict] = []
    for path in sorted(folder.glob("usage-*.jsonl")):
        claimed = path.with_name(f".flushing-{uuid.uuid4().hex}")
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue
        with claimed.open("rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # writers in flight finish first
            for raw in handle:
                try:
                    entries.append(json.loads(raw))
                except ValueError:
                    continue  # a torn line from a crash: drop it
        claimed.unlink()
    return entries


def usage_flush() -> dict:
    """Write queued calls in bulk and advance licenses' last_active_at; return counts."""
    entries = _drain_redis() + _drain_spool()
    if not entries:
        return {"calls": 0, "licenses": 0}
    rows = [
        ApiUsageLog(
            created_at=datetime.fromtimestamp(entry["at"], tz=UTC),
            license_id=entry.get("license_id"),
            user_id=entry.get("user_id"),
            **{name: entry.get(name) for name in _FIELDS},
        )
        for entry in entries
    ]
    last_active: dict[int, datetime] = {}
    for row in rows:
        if row.license_id and row.created_at > last_active.get(
            row.license_id, row.created_at - timedelta(1)
        ):
            last_active[row.license_id] = row.created_at
    with transaction.atomic():
        ApiUsageLog.objects.bulk_create(rows, batch_size=BATCH // 10)
        _last_active_advance(last_active)
    return {"calls": len(rows), "licenses": len(last_active)}


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
