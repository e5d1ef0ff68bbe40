"""The validation path: no database write, and usually no database read either.

A key's snapshot (id, type, status, expiry) is cached for LICENSE_VALIDATION_CACHE_SECONDS,
a miss included (NOT_FOUND), and dropped by every admin change (`licensing.snapshots`). The
code is computed from the snapshot at the moment of the request, so expiry is exact however
long the snapshot lives. Last-active is not written here: the usage-log middleware records
the call with its license and `usage_flush` sets `last_active_at` in bulk.

With Redis, a validation is one round trip in all (`_VALIDATE_LUA`): one script counts the
call on the per-address and per-key limits, reads the key's cached snapshot and queues the
call in the usage log; only a snapshot not cached adds a query and a write to the cache.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from django.conf import settings
from django.utils import timezone

from ..errors import MalformedLicenseKeyError
from ..keys import MalformedKeyError, digests_equal, key_digest, key_normalize
from ..models import License, license_code
from ..ratelimit import LIMITS_LUA, Decision, rate_limit_error, rate_limit_hit_all
from ..signing import private_key, signed_json
from ..snapshots import MISSING, snapshot_decode, snapshot_key, snapshot_read, snapshot_write
from .usage import QUEUE, UsageCall

# After the limits: KEYS[n+1] is the key's snapshot, KEYS[n+2] the usage-log queue;
# ARGV[2n+3] the call's usage entry as JSON ('' when the middleware logs it). The entry is
# queued here when its status is already known: 429 when refused, 200 when the snapshot was
# cached (then it carries the snapshot's license id); after a miss the middleware logs it.
# Returns the limits' figures, the snapshot (nil when refused or not cached) and 1 when the
# entry was queued.
_VALIDATE_LUA = (
    LIMITS_LUA
    + """
local value = false
if refused == 0 then
  value = redis.call('GET', KEYS[n + 1])
  if value and not pcall(cjson.decode, value) then value = false end
end
local entry = ARGV[2 * n + 3]
if entry == '' or (refused == 0 and not value) then
  return {refused, remaining, retry, reset, value, 0}
end
local call = cjson.decode(entry)
if refused > 0 then
  call['status_code'] = 429
else
  call['status_code'] = 200
  call['license_id'] = cjson.decode(value)['id']
end
redis.call('RPUSH', KEYS[n + 2], cjson.encode(call))
return {refused, remaining, retry, reset, value, 1}
"""
)


@dataclass(frozen=True)
class Validation:
    """A validation's signed answer: `body` is the JSON sent (with `signature`), `answer` the
    same as a dict; `snapshot` is None for an unknown key; `rate_limit` the per-key limit's
    decision when limits were counted."""

    body: bytes
    answer: dict
    snapshot: dict | None
    rate_limit: Decision | None


def license_key_parse(raw: str) -> str:
    """The canonical key, or 400 `invalid_license_key` (no query: the check symbol decides)."""
    try:
        return key_normalize(raw)
    except MalformedKeyError as exc:
        raise MalformedLicenseKeyError(str(exc)) from exc


def _snapshot_from_db(digest: str) -> dict:
    # A plain dict: reshaped below (the hash out, the expiry a timestamp).
    row = cast(
        "dict[str, Any] | None",
        License.objects.filter(key_hash=digest)
        .values("id", "account_id", "license_type", "status", "expires_at", "is_admin", "key_hash")
        .first(),
    )
    if row is not None and not digests_equal(row.pop("key_hash"), digest):
        row = None  # unreachable with a unique index; the compare is constant-time anyway
    if row is not None and row["expires_at"] is not None:
        row["expires_at"] = row["expires_at"].timestamp()
    return row or MISSING


_UNREAD = object()  # the cache was not asked yet (as opposed to None: asked, not there)


def _snapshot(digest: str, cached=_UNREAD) -> dict | None:
    snapshot = snapshot_read(digest) if cached is _UNREAD else cached
    if snapshot is None:
        snapshot = _snapshot_from_db(digest)
        snapshot_write(digest, snapshot)
    return snapshot if snapshot.get("id") else None


def license_snapshot(*, key: str) -> dict | None:
    """What validation needs about the license of `key` (canonical), through the cache."""
    return _snapshot(key_digest(key))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def snapshot_code(snapshot: dict | None, now: datetime | None = None) -> str:
    if snapshot is None:
        return License.Code.NOT_FOUND
    now = now or timezone.now()
    expires = snapshot["expires_at"]
    return license_code(
        status=snapshot["status"],
        expires_at=None if expires is None else datetime.fromtimestamp(expires, tz=UTC),
        now=now,
    )


def _limited(digest: str, ip: str, usage: UsageCall | None) -> tuple[Decision, object]:
    """Count the call per address and per key (429 over either). When the limiter's Redis
    also holds the snapshots and the usage queue, the same round trip reads the snapshot and
    queues the call (`_VALIDATE_LUA`). Returns the decision and the cached snapshot (None:
    not cached), or `_UNREAD` when the cache was not read."""
    checks = [
        ("validate-ip", ip, settings.LICENSE_VALIDATE_RATE_LIMIT_PER_IP),
        ("validate-key", digest[:32], settings.LICENSE_VALIDATE_RATE_LIMIT_PER_KEY),
    ]
    url = settings.REDIS_URL
    if not url or url != settings.LICENSE_RATE_LIMIT_REDIS_URL:
        decision, _ = rate_limit_hit_all(checks=checks)
        if not decision.allowed:
            raise rate_limit_error(decision)
        return decision, _UNREAD
    entry = "" if usage is None else json.dumps(usage.entry(), separators=(",", ":"))
    decision, extra = rate_limit_hit_all(
        checks=checks,
        script=_VALIDATE_LUA,
        extra_keys=(snapshot_key(digest), QUEUE),
        extra_args=(entry,),
    )
    raw, queued = extra if extra is not None else (_UNREAD, 0)  # None: counted in memory
    if queued and usage is not None:
        usage.queued_status = 200 if decision.allowed else 429
    if not decision.allowed:
        raise rate_limit_error(decision)
    return decision, snapshot_decode(raw) if isinstance(raw, bytes) else raw


def license_validate(
    *, key: str, nonce: str | None = None, ip: str | None = None, usage: UsageCall | None = None
) -> Validation:
    """The signed answer for a canonical key. With `ip`, the call is first counted on the
    validation limits per address and per key (`RateLimitedError` over either), and queued
    in the usage log on the way when `usage` is given."""
    digest = key_digest(key)
    decision, cached = None, _UNREAD
    if ip is not None:
        private_key()  # a missing signing key fails here, before the call is logged as answered
        decision, cached = _limited(digest, ip, usage)
    snapshot = _snapshot(digest, cached)
    now = timezone.now()
    code = snapshot_code(snapshot, now)
    answer = {
        "valid": code == License.Code.VALID,
        "code": code,
        "license_type": snapshot["license_type"] if snapshot else None,
        "expires_at": _iso(snapshot["expires_at"]) if snapshot else None,
        "account_id": snapshot["account_id"] if snapshot else None,
        "nonce": nonce,
        "ts": now.isoformat().replace("+00:00", "Z"),
    }
    body, answer["signature"] = signed_json(answer)
    return Validation(body, answer, snapshot, decision)
