"""The audit trail: one function writes every event; chains make tampering visible.

Each object (`object_type`, `object_id`) has its own chain: event `seq` N stores the hash of
event N-1 in `prev_hash`, and its own `hash` is an HMAC-SHA256 (keyed with
`settings.AUDIT_CHAIN_KEY`) over its content and `prev_hash`. Changing, removing or inserting
a row without the key breaks a link that `audit_verify()` finds. What the chain cannot show
on its own: the removal of a chain's newest events, or of a whole chain.
"""

import hashlib
import hmac
import ipaddress
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connections, models, router, transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from accounts.models import AuditEvent

SYSTEM_ACTOR = "system"
ANONYMOUS_ACTOR = "anonymous"

# Tries at the next link of a chain when another writer took it first. On PostgreSQL the
# advisory lock makes a lost race rare; on SQLite the write lock makes it impossible.
_MAX_ATTEMPTS = 5
_VERIFY_CHUNK = 2000
_HASH_VERSION = 1


@dataclass(frozen=True)
class BrokenLink:
    """The first event of a chain that does not verify, and why."""

    event_id: int
    object_type: str
    object_id: str
    seq: int
    problem: str  # "hash mismatch" | "prev_hash does not match" | "sequence gap (seq N missing)"

    @property
    def chain(self) -> str:
        return f"{self.object_type}:{self.object_id}"


@dataclass(frozen=True)
class AuditVerification:
    """What a walk of the chains found: counts, the first broken link and how many broke."""

    events_checked: int
    chains_checked: int
    first_break: BrokenLink | None
    breaks: int = 0

    @property
    def intact(self) -> bool:
        return self.first_break is None


def audit_record(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    actor=None,
    mt5_login: int | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    ip: str | None = None,
) -> AuditEvent:
    """Append an event to its object's chain; `actor=None` records the system as the actor."""
    actor_id, fields = _event_fields(
        action=action,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        mt5_login=mt5_login,
        before=before,
        after=after,
        reason=reason,
        ip=ip,
    )
    db = router.db_for_write(AuditEvent)
    # savepoint=False: join the caller's transaction rather than open another savepoint; the
    # savepoint that matters is the one around each attempt below.
    with transaction.atomic(using=db, savepoint=False):
        if connections[db].vendor == "postgresql":
            # Writers of one chain queue here, until their transactions end, instead of all
            # reading the same head and all but one failing on the unique (chain, seq). They
            # would queue anyway: a second insert of one seq waits for the first to commit.
            # Writers of different chains take different locks and never wait for each other.
            with connections[db].cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s)",
                    [_chain_lock_key(fields["object_type"], fields["object_id"])],
                )
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with transaction.atomic(using=db):
                    seq, prev_hash = _chain_head(db, fields["object_type"], fields["object_id"])
                    event = AuditEvent(
                        at=_utc(timezone.now()),
                        actor_id=actor_id,
                        seq=seq + 1,
                        prev_hash=prev_hash,
                        **fields,
                    )
                    event.hash = _event_hash(event)
                    event.save(using=db, force_insert=True)
                return event
            except IntegrityError:
                # Someone else took this seq (the unique constraint said so): read the new
                # head and link to it. Only this attempt's savepoint was rolled back.
                if attempt == _MAX_ATTEMPTS:
                    raise
    raise AssertionError("unreachable")  # pragma: no cover


def audit_record_many(events: list[dict[str, Any]]) -> list[AuditEvent]:
    """`audit_record` for many events at once (each a dict of its keyword arguments), in
    their order: the same chains and hashes, in a handful of queries instead of four each.

    The chains' locks are taken in key order (so two batches never deadlock on each other),
    their heads read in one query, and the events inserted in one; a chain may get several
    of the events, linked in order.
    """
    if not events:
        return []
    prepared = [_event_fields(**event) for event in events]
    chains = {(fields["object_type"], fields["object_id"]) for _, fields in prepared}
    db = router.db_for_write(AuditEvent)
    with transaction.atomic(using=db, savepoint=False):
        if connections[db].vendor == "postgresql":
            keys = sorted({_chain_lock_key(*chain) for chain in chains})
            with connections[db].cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_advisory_xact_lock(k)) FROM "
                    "(SELECT unnest(%s::bigint[]) AS k ORDER BY 1) AS ordered",
                    [keys],
                )
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with transaction.atomic(using=db):
                    heads = _chain_heads(db, chains)
                    rows = []
                    at = _utc(timezone.now())
                    for actor_id, fields in prepared:
                        chain = (fields["object_type"], fields["object_id"])
                        seq, prev_hash = heads.get(chain, (0, ""))
                        event = AuditEvent(
                            at=at, actor_id=actor_id, seq=seq + 1, prev_hash=prev_hash, **fields
                        )
                        event.hash = _event_hash(event)
                        heads[chain] = (event.seq, event.hash)
                        rows.append(event)
                    # The chained rows, through the QuerySet's own bulk_create (the
                    # model's refuses, so that nothing else writes events unlinked).
                    return models.QuerySet.bulk_create(AuditEvent.objects.using(db).all(), rows)
            except IntegrityError:
                if attempt == _MAX_ATTEMPTS:
                    raise
    raise AssertionError("unreachable")  # pragma: no cover


def _event_fields(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    actor=None,
    mt5_login: int | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    ip: str | None = None,
) -> tuple[int | None, dict[str, Any]]:
    """The actor's id and the checked, normalized content fields of one event."""
    if obj is not None:
        if object_type is not None or object_id is not None:
            raise ValueError("Pass either obj or object_type/object_id, not both.")
        if obj.pk is None:
            raise ValueError("Cannot audit an unsaved object.")
        object_type, object_id = obj._meta.label_lower, obj.pk
    if not object_type or object_id is None or str(object_id) == "":
        raise ValueError("An audit event needs obj, or object_type and object_id.")
    if not action:
        raise ValueError("An audit event needs an action.")
    actor_id, actor_label = _actor(actor)
    fields = {
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "actor_label": actor_label,
        "reason": reason or "",
        "mt5_login": None if mt5_login is None else int(mt5_login),
        "before": _normalize_json(before),
        "after": _normalize_json(after),
        "ip": _normalize_ip(ip),
    }
    _check_lengths(fields)
    return actor_id, fields


def audit_verify(
    *, object_type: str | None = None, object_id: str | None = None
) -> AuditVerification:
    """Walk the chains (all, one type's, or one object's) and report the first broken link."""
    if object_id is not None and object_type is None:
        raise ValueError("object_id needs object_type.")
    events = AuditEvent.objects.order_by("object_type", "object_id", "seq")
    if object_type is not None:
        events = events.filter(object_type=object_type)
    if object_id is not None:
        events = events.filter(object_id=str(object_id))

    events_checked = chains_checked = breaks = 0
    first_break: BrokenLink | None = None
    chain: tuple[str, str] | None = None
    expected_seq, expected_prev = 1, ""
    for event in events.iterator(chunk_size=_VERIFY_CHUNK):
        events_checked += 1
        if (event.object_type, event.object_id) != chain:
            chain = (event.object_type, event.object_id)
            chains_checked += 1
            expected_seq, expected_prev = 1, ""
        problem = _link_problem(event, expected_seq, expected_prev)
        if problem is not None:
            breaks += 1
            if first_break is None:
                first_break = BrokenLink(
                    event_id=event.pk,
                    object_type=event.object_type,
                    object_id=event.object_id,
                    seq=event.seq,
                    problem=problem,
                )
        # Check each later link against what is stored, so one break is counted once.
        expected_seq, expected_prev = event.seq + 1, event.hash
    return AuditVerification(
        events_checked=events_checked,
        chains_checked=chains_checked,
        first_break=first_break,
        breaks=breaks,
    )


def _link_problem(event: AuditEvent, expected_seq: int, expected_prev: str) -> str | None:
    if event.seq != expected_seq:
        return f"sequence gap (seq {expected_seq} missing)"
    if event.prev_hash != expected_prev:
        return "prev_hash does not match"
    if not hmac.compare_digest(event.hash, _event_hash(event)):
        return "hash mismatch"
    return None


def _chain_head(db: str, object_type: str, object_id: str) -> tuple[int, str]:
    head = (
        AuditEvent.objects.using(db)
        .filter(object_type=object_type, object_id=object_id)
        .order_by("-seq")
        .values_list("seq", "hash")
        .first()
    )
    return head if head is not None else (0, "")


def _chain_heads(db: str, chains: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str]]:
    """The newest (seq, hash) of each of these chains that has events, in one query."""
    by_type: dict[str, list[str]] = {}
    for object_type, object_id in chains:
        by_type.setdefault(object_type, []).append(object_id)
    query = models.Q()
    for object_type, ids in by_type.items():
        query |= models.Q(object_type=object_type, object_id__in=ids)
    # Only each chain's newest event (by the chain index), not the whole of every chain.
    newest = (
        AuditEvent.objects.using(db)
        .filter(object_type=models.OuterRef("object_type"), object_id=models.OuterRef("object_id"))
        .order_by("-seq")
        .values("seq")[:1]
    )
    rows = AuditEvent.objects.using(db).filter(query, seq=models.Subquery(newest))
    return {
        (object_type, object_id): (seq, hash_)
        for object_type, object_id, seq, hash_ in rows.values_list(
            "object_type", "object_id", "seq", "hash"
        )
    }


def _event_hash(event: AuditEvent) -> str:
    """HMAC-SHA256 over a canonical JSON of every content field of the event."""
    content = {
        "v": _HASH_VERSION,
        "at": _utc(event.at).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "mt5_login": event.mt5_login,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "ip": _canonical_ip(event.ip),
        "seq": event.seq,
        "prev_hash": event.prev_hash,
    }
    message = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()
    return hmac.new(_chain_key(), message, hashlib.sha256).hexdigest()


def _chain_key() -> bytes:
    key = settings.AUDIT_CHAIN_KEY
    return key if isinstance(key, bytes) else str(key).encode()


def _chain_lock_key(object_type: str, object_id: str) -> int:
    """A stable signed 64-bit key per chain for pg_advisory_xact_lock(bigint)."""
    digest = hashlib.blake2b(
        f"accounts.audit_chain\x00{object_type}\x00{object_id}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _utc(value: datetime) -> datetime:
    # Both databases keep microseconds; UTC makes the ISO text the same however it is read.
    return value.astimezone(UTC)


def _actor(actor) -> tuple[int | None, str]:
    if actor is None:
        return None, SYSTEM_ACTOR
    if not getattr(actor, "is_authenticated", True):  # request.user of an anonymous request
        return None, ANONYMOUS_ACTOR
    if actor.pk is None:
        raise ValueError("The actor must be a saved user.")
    return actor.pk, actor.email


def _normalize_json(value: Any) -> Any:
    """The value as the JSON column will give it back, so that what is hashed is what is read.

    DjangoJSONEncoder turns Decimals, datetimes and UUIDs into strings. Whole-number floats
    become ints because PostgreSQL's jsonb reads `1e+20` as a numeric and returns it as
    `100000000000000000000`; written as the same integer here, it reads back the same anywhere.
    """
    if value is None:
        return None
    try:
        plain = json.loads(json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False))
    except ValueError as exc:
        raise ValueError(f"Audit before/after must be finite JSON: {exc}") from exc
    return _whole_floats_to_int(plain)


def _whole_floats_to_int(value: Any) -> Any:
    if isinstance(value, float):
        # Through the float's shortest text, as PostgreSQL parses it: int(1e300) != 10**300.
        return int(Decimal(repr(value))) if math.isfinite(value) and value.is_integer() else value
    if isinstance(value, dict):
        return {key: _whole_floats_to_int(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_floats_to_int(item) for item in value]
    return value


def _normalize_ip(ip: str | None) -> str | None:
    """The address in the form Django stores it: None for blank, IPv6 compressed."""
    if ip is None or not str(ip).strip():
        return None
    ip = str(ip).strip()
    try:
        address = ipaddress.ip_address(ip)
    except ValueError as exc:
        raise ValueError(f"Not an IP address: {ip!r}") from exc
    if getattr(address, "scope_id", None):
        raise ValueError(f"PostgreSQL cannot store a scoped IPv6 address: {ip!r}")
    return clean_ipv6_address(ip) if address.version == 6 else str(address)


def _canonical_ip(ip: str | None) -> str | None:
    # PostgreSQL's inet prints some IPv6 addresses its own way ("::1.2.3.4" where Django
    # writes "::102:304"): hash the address itself, not one way of spelling it.
    if ip is None:
        return None
    try:
        return ipaddress.ip_address(ip).exploded
    except ValueError:
        return ip  # not an address: cannot have been written by audit_record()


def _check_lengths(fields: dict[str, Any]) -> None:
    # PostgreSQL would refuse an over-long value and SQLite would keep it: refuse it on both.
    for name in ("action", "object_type", "object_id", "actor_label"):
        field = AuditEvent._meta.get_field(name)
        assert isinstance(field, models.CharField) and field.max_length is not None
        limit = field.max_length
        if len(fields[name]) > limit:
            raise ValueError(f"Audit {name} is longer than {limit} characters.")
