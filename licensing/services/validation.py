"""The validation path: no database write, and usually no database read either.

A key's snapshot (id, type, status, expiry) is cached for LICENSE_VALIDATION_CACHE_SECONDS,
a miss included (NOT_FOUND), and dropped by every admin change. The code is computed from the
snapshot at the moment of the request, so expiry is exact however long the snapshot lives.
Last-active is not written here: the usage-log middleware records the call with its license
and `usage_flush` sets `last_active_at` in bulk.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from ..errors import MalformedLicenseKeyError
from ..keys import MalformedKeyError, digests_equal, key_digest, key_normalize
from ..models import License, license_code
from ..signing import sign
from .licenses import license_cache_key

_MISSING = {"id": None}


def license_key_parse(raw: str) -> str:
    """The canonical key, or 400 `invalid_license_key` (no query: the check symbol decides)."""
    try:
        return key_normalize(raw)
    except MalformedKeyError as exc:
        raise MalformedLicenseKeyError(str(exc)) from exc


def license_snapshot(*, key: str) -> dict | None:
    """What validation needs about the license of `key` (canonical), through the cache."""
    digest = key_digest(key)
    cache_key = license_cache_key(digest)
    snapshot = cache.get(cache_key)
    if snapshot is None:
        row = (
            License.objects.filter(key_hash=digest)
            .values(
                "id", "account_id", "license_type", "status", "expires_at", "is_admin", "key_hash"
            )
            .first()
        )
        if row is not None and not digests_equal(row.pop("key_hash"), digest):
            row = None  # unreachable with a unique index; the compare is constant-time anyway
        if row is not None and row["expires_at"] is not None:
            row["expires_at"] = row["expires_at"].timestamp()
        snapshot = row or _MISSING
        cache.set(cache_key, snapshot, timeout=settings.LICENSE_VALIDATION_CACHE_SECONDS)
    return snapshot if snapshot.get("id") else None


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


def license_validate(*, key: str, nonce: str | None = None) -> tuple[dict, dict | None]:
    """The signed answer for a canonical key, and the snapshot it came from (None: unknown)."""
    snapshot = license_snapshot(key=key)
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
    answer["signature"] = sign(answer)
    return answer, snapshot
