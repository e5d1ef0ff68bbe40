"""Issue 14: a NUL byte in a path lost the API usage log.

`GET /api/v1/x%00y/` was queued like any call; PostgreSQL text refuses NUL, so the bulk
insert of the whole flush window failed, and the window was already gone from Redis (or the
spool file already deleted). Now every text field is cleaned before the insert, a row the
database still refuses is dropped alone (counted, logged), and nothing leaves the queue or
the spool before it is committed.

Each test runs on both queues: Redis (when REDIS_URL is set) and the spool files.
"""

import json
import logging
from pathlib import Path

import pytest
from django.db import OperationalError
from django.test import RequestFactory

from licensing.models import ApiUsageLog
from licensing.redis_client import activity_redis, redis_for
from licensing.services import usage
from licensing.services.usage import (
    FLUSH_LOCK,
    QUEUE,
    UsageCall,
    usage_clean_text,
    usage_enqueue,
    usage_flush,
    usage_row,
)
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "spool"])
def queue(request, settings):
    """Which queue the calls go through; `queue.left()` counts the calls still in it. The
    Redis one is deselected without REDIS_URL (the `redis` marker)."""
    if request.param == "spool":
        settings.REDIS_URL = ""
        redis_for.cache_clear()
    yield _Queue(request.param, Path(settings.LICENSE_USAGE_SPOOL_DIR))
    redis_for.cache_clear()


class _Queue:
    def __init__(self, kind: str, folder: Path):
        self.kind, self.folder = kind, folder

    def left(self) -> int:
        if self.kind == "redis":
            return activity_redis().llen(QUEUE)
        if not self.folder.is_dir():
            return 0
        return sum(
            len([line for line in path.read_bytes().splitlines() if line.strip()])
            for path in self.folder.iterdir()
        )


def entry(**fields) -> dict:
    base = {
        "at": 1_790_000_000.0,
        "endpoint": "/api/v1/licenses/validate/",
        "method": "POST",
        "status_code": 200,
        "response_ms": 1.5,
        "ip": "203.0.113.9",
        "user_agent": "client/1.0",
        "license_id": None,
        "user_id": None,
    }
    return {**base, **fields}


def queued_call(path: str, *, user_agent: str = "client/1.0", status: int = 404) -> dict:
    """What the usage middleware queues for a request to `path` (as it did before the guard
    middleware refused such paths: validation's own round trip still queues calls)."""
    request = RequestFactory().get(path, HTTP_USER_AGENT=user_agent)
    return UsageCall.start(request).entry(status_code=status)


# --- The attack -------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_nul_path_among_ordinary_calls_no_longer_loses_the_flush_window(client, queue):
    for _ in range(3):
        assert client.get("/api/v1/licenses/public-key/").status_code == 200
    usage_enqueue(queued_call("/api/v1/x%00y/"))

    result = usage_flush()

    assert result == {"calls": 4, "licenses": 0, "dropped": 0}
    assert ApiUsageLog.objects.count() == 4
    assert ApiUsageLog.objects.filter(endpoint="/api/v1/xy/").count() == 1
    assert queue.left() == 0


def test_the_nul_path_itself_is_refused_before_it_reaches_the_log(client, queue):
    response = client.get("/api/v1/x%00y/")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_path"
    assert usage_flush()["calls"] == 0


def test_nul_and_control_characters_are_cleaned_out_of_every_text_field(queue):
    usage_enqueue(queued_call("/api/v1/a%00b%0D%0A%7Fc/", user_agent="ua\x00\x1b[31m\x85/1"))
    usage_enqueue(entry(method="PO\x00ST", endpoint="/api/v1/caf\u00e9/\ud800"))

    assert usage_flush()["calls"] == 2

    rows = list(ApiUsageLog.objects.order_by("id").values_list("endpoint", "method", "user_agent"))
    assert rows == [
        ("/api/v1/abc/", "GET", "ua[31m/1"),
        ("/api/v1/caf\u00e9/", "POST", "client/1.0"),
    ]


@pytest.mark.postgres
def test_a_row_the_database_still_refuses_is_dropped_alone_and_the_rest_written(
    queue, monkeypatch, caplog
):
    # As if the cleaning had missed something: NUL reaches the INSERT.
    monkeypatch.setattr(usage, "usage_clean_text", lambda value, max_length: str(value))
    for n in range(3):
        usage_enqueue(entry(endpoint=f"/api/v1/ok/{n}/"))
    for n in range(2):
        usage_enqueue(entry(endpoint=f"/api/v1/x\x00{n}/"))

    with caplog.at_level(logging.WARNING, logger="licensing.services.usage"):
        result = usage_flush()

    assert result == {"calls": 3, "licenses": 0, "dropped": 2}
    assert sorted(ApiUsageLog.objects.values_list("endpoint", flat=True)) == [
        "/api/v1/ok/0/",
        "/api/v1/ok/1/",
        "/api/v1/ok/2/",
    ]
    dropped = [r for r in caplog.records if r.getMessage().startswith("usage flush: dropped")]
    assert len(dropped) == 2
    assert queue.left() == 0


def test_a_queued_line_that_is_no_call_is_dropped_and_counted_the_rest_written(queue, settings):
    usage_enqueue(entry())
    for junk in ([1, 2], {"endpoint": "/no/time/"}, entry(status_code=99_999), entry(at="x")):
        usage_enqueue(junk)
    if queue.kind == "redis":
        activity_redis().rpush(QUEUE, b"{not json")
    else:
        with next(queue.folder.glob("usage-*.jsonl")).open("ab") as spool:
            spool.write(b"{not json\n")

    assert usage_flush() == {"calls": 1, "licenses": 0, "dropped": 5}
    assert queue.left() == 0


def test_an_ipv6_address_with_a_zone_is_kept_without_it(queue):
    usage_enqueue(entry(ip="fe80::1%eth0"))
    usage_enqueue(entry(ip="not an address"))
    usage_flush()
    assert sorted(ApiUsageLog.objects.values_list("ip", flat=True), key=str) == [None, "fe80::1"]


# --- Nothing leaves the queue before it is committed -----------------------------------------


def test_a_database_outage_keeps_every_call_queued_for_the_next_flush(queue, monkeypatch):
    for n in range(5):
        usage_enqueue(entry(endpoint=f"/api/v1/call/{n}/"))

    def database_down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patched:
        patched.setattr(ApiUsageLog.objects, "bulk_create", database_down)
        with pytest.raises(OperationalError):
            usage_flush()
    assert queue.left() == 5
    assert ApiUsageLog.objects.count() == 0

    assert usage_flush()["calls"] == 5
    assert queue.left() == 0


def test_a_spool_file_a_dead_flusher_had_claimed_is_written_by_the_next_flush(settings):
    settings.REDIS_URL = ""
    redis_for.cache_clear()
    folder = Path(settings.LICENSE_USAGE_SPOOL_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(entry(endpoint=f"/api/v1/left/{n}/")) for n in range(2)]
    (folder / ".flushing-deadbeef").write_text("\n".join(lines) + "\n")

    assert usage_flush()["calls"] == 2
    assert list(folder.iterdir()) == []


def test_a_claimed_spool_file_a_live_flusher_holds_is_left_to_it(settings):
    import fcntl

    settings.REDIS_URL = ""
    redis_for.cache_clear()
    folder = Path(settings.LICENSE_USAGE_SPOOL_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    claimed = folder / ".flushing-busy"
    claimed.write_text(json.dumps(entry()) + "\n")
    with claimed.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert usage_flush()["calls"] == 0
        assert claimed.exists()
    assert usage_flush()["calls"] == 1


@pytest.mark.redis
def test_while_another_flush_holds_the_lock_this_one_leaves_redis_alone():
    usage_enqueue(entry())
    activity_redis().set(FLUSH_LOCK, "another-flusher", ex=60)
    assert usage_flush()["calls"] == 0
    assert activity_redis().llen(QUEUE) == 1
    activity_redis().delete(FLUSH_LOCK)
    assert usage_flush()["calls"] == 1


@pytest.mark.redis
def test_a_flush_whose_lock_ran_out_mid_batch_trims_nothing_another_has_not_written(monkeypatch):
    for _ in range(3):
        usage_enqueue(entry())
    write = usage._write

    def slow_write(lines, written):
        write(lines, written)
        activity_redis().set(FLUSH_LOCK, "the-next-flusher", ex=60)  # ours ran out meanwhile

    monkeypatch.setattr(usage, "_write", slow_write)
    usage_flush()
    assert activity_redis().llen(QUEUE) == 3  # written, maybe twice; never trimmed unwritten
    assert activity_redis().get(FLUSH_LOCK) == b"the-next-flusher"  # not ours to release


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_write_every_call_exactly_once():
    client = activity_redis()
    lines = [json.dumps(entry(endpoint=f"/api/v1/many/{n}/")) for n in range(2500)]
    client.rpush(QUEUE, *lines)

    results, errors = run_at_once(lambda n: usage_flush(), threads=4)
    written = sum(result["calls"] for result in results)
    while later := usage_flush()["calls"]:  # a flusher that met the lock left it for later
        written += later

    assert errors == []
    assert written == 2500
    assert ApiUsageLog.objects.count() == 2500
    assert ApiUsageLog.objects.values("endpoint").distinct().count() == 2500
    assert client.llen(QUEUE) == 0


# --- The cleaning, unit by unit --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("/api/v1/x\x00y/", "/api/v1/xy/"),
        ("a\r\nb\tc", "abc"),
        ("del\x7f and c1\x85\x9f", "del and c1"),
        ("lone \ud800 surrogate", "lone  surrogate"),
        ("caf\u00e9 \u2603 \U0001f600", "caf\u00e9 \u2603 \U0001f600"),
        (None, ""),
        (12, "12"),
    ],
)
def test_usage_clean_text_keeps_only_what_a_text_column_stores(raw, clean):
    assert usage_clean_text(raw, max_length=255) == clean


def test_usage_clean_text_cuts_to_the_column():
    assert usage_clean_text("a" * 300, max_length=255) == "a" * 255


@pytest.mark.parametrize(
    "bad",
    [
        "a string",
        entry(at=None),
        entry(at=True),
        entry(at=float("nan")),
        entry(status_code=None),
        entry(status_code="200"),
        entry(status_code=-1),
    ],
)
def test_usage_row_refuses_what_is_no_call(bad):
    with pytest.raises(ValueError):
        usage_row(bad)


def test_usage_row_keeps_what_it_can_of_odd_fields():
    row = usage_row(entry(response_ms="slow", license_id="7", user_id=True, ip=None))
    assert (row.response_ms, row.license_id, row.user_id, row.ip) == (0.0, None, None, None)
