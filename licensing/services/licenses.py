"""License lifecycle: create (the key is returned once, or sent through a one-time delivery
link), extend, suspend, activate, expire.

Every change is audited and drops the license's cached validation answer, at once and again
after commit (so a validation racing the commit cannot re-cache the old row). A change made
through the admin API with an ADMIN license key (no user) names that license in the audit
event's `after.by_license` ({account_id, key_last4}); the actor is then the system.
"""

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import audit_record
from core.errors import ConflictError
from delivery.services import DeliveryResult, delivery_contact_check, delivery_create

from ..keys import key_digest, key_generate
from ..models import LICENSE_DURATIONS, License
from ..snapshots import snapshot_drop


def license_cache_invalidate(*, digest: str) -> None:
    """Forget the cached validation snapshot of one key, now and when the transaction commits."""
    snapshot_drop(digest)
    transaction.on_commit(lambda: snapshot_drop(digest))


def _snapshot(license: License, by_license: dict | None = None) -> dict:
    state: dict[str, Any] = {
        "license_type": license.license_type,
        "status": license.status,
        "expires_at": license.expires_at,
        "is_admin": license.is_admin,
        "suspended_reason": license.suspended_reason,
    }
    if by_license:
        state["by_license"] = by_license
    return state


def license_delivery_purpose(license: License) -> str:
    """The delivery purpose of a license's key (see `delivery_create`)."""
    return f"licensing.license:{license.pk}"


def license_create(
    *,
    account_id: str,
    license_type: str,
    email: str = "",
    duration_days: int | None = None,
    notes: str = "",
    user=None,
    actor=None,
    ip: str | None = None,
    by_license: dict | None = None,
) -> tuple[License, str]:
    """Issue a license; returns it and its key, which is never available again."""
    now = timezone.now()
    if license_type == License.Type.ADMIN:
        expires_at = None
    elif duration_days is not None:
        expires_at = now + timedelta(days=duration_days)
    else:
        duration = LICENSE_DURATIONS[license_type]
        assert duration is not None  # only an admin license has none
        expires_at = now + duration
    if License.objects.filter(account_id=account_id).exists():
        raise ConflictError(f"{account_id!r} already has a license.", code="license_exists")
    key = key_generate()
    digest = key_digest(key)
    try:
        with transaction.atomic():
            license = License.objects.create(
                account_id=account_id,
                email=email,
                notes=notes,
                user=user,
                license_type=license_type,
                is_admin=license_type == License.Type.ADMIN,
                expires_at=expires_at,
                key_hash=digest,
                key_last4=key[-4:],
            )
            audit_record(
                action="license.create",
                obj=license,
                actor=actor,
                ip=ip,
                after=_snapshot(license, by_license),
            )
    except IntegrityError as exc:
        raise ConflictError(
            f"{account_id!r} already has a license.", code="license_exists"
        ) from exc
    license_cache_invalidate(digest=digest)  # a NOT_FOUND answer may be cached for this key
    return license, key


def license_create_delivered(
    *,
    method: str,
    contact: str = "",
    actor=None,
    ip: str | None = None,
    by_license: dict | None = None,
    **fields,
) -> tuple[License, DeliveryResult]:
    """Issue a license whose key goes only through a one-time delivery link (`method`:
    telegram, email, api, qr; `contact`: the chat or address), never back to the caller.

    A contact the method cannot use is refused before anything is made, and the license and
    its delivery are one transaction: there is never a license whose key nobody received.
    `fields` are `license_create`'s."""
    contact = delivery_contact_check(method=method, contact=contact)
    with transaction.atomic():
        license, key = license_create(actor=actor, ip=ip, by_license=by_license, **fields)
        result = delivery_create(
            purpose=license_delivery_purpose(license),
            payload={
                "license_key": key,
                "account_id": license.account_id,
                "license_type": license.license_type,
                "expires_at": license.expires_at.isoformat() if license.expires_at else "never",
            },
            method=method,
            contact=contact,
            owner=license.user,
            actor=actor,
        )
        after = {"delivery": result.delivery.pk, "method": method, "contact": contact}
        if by_license:
            after["by_license"] = by_license
        audit_record(action="license.key_delivery", obj=license, actor=actor, ip=ip, after=after)
    return license, result


@transaction.atomic
def license_extend(
    *,
    license: License,
    days: int,
    actor=None,
    ip: str | None = None,
    by_license: dict | None = None,
) -> License:
    """Add `days`; an expired license is extended from now, not from its old expiry."""
    if days < 1:
        raise ConflictError("Extend by at least one day.", code="invalid_days")
    license = License.objects.select_for_update().get(pk=license.pk)
    if license.expires_at is None:
        raise ConflictError("This license never expires.", code="license_never_expires")
    before = _snapshot(license)
    now = timezone.now()
    license.expires_at = max(license.expires_at, now) + timedelta(days=days)
    if license.status == License.Status.EXPIRED:
        license.status = License.Status.ACTIVE
    license.save(update_fields=["expires_at", "status", "updated_at"])
    audit_record(
        action="license.extend",
        obj=license,
        actor=actor,
        ip=ip,
        before=before,
        after=_snapshot(license, by_license),
        reason=f"+{days} days",
    )
    license_cache_invalidate(digest=license.key_hash)
    return license


@transaction.atomic
def license_suspend(
    *,
    license: License,
    reason: str = "",
    actor=None,
    ip: str | None = None,
    by_license: dict | None = None,
) -> License:
    """Suspend: every validation says SUSPENDED from now on."""
    license = License.objects.select_for_update().get(pk=license.pk)
    if license.status == License.Status.SUSPENDED:
        raise ConflictError("This license is already suspended.", code="license_suspended")
    before = _snapshot(license)
    license.status = License.Status.SUSPENDED
    license.suspended_reason = reason[:500]
    license.save(update_fields=["status", "suspended_reason", "updated_at"])
    audit_record(
        action="license.suspend",
        obj=license,
        actor=actor,
        ip=ip,
        before=before,
        after=_snapshot(license, by_license),
        reason=reason,
    )
    license_cache_invalidate(digest=license.key_hash)
    return license


@transaction.atomic
def license_activate(
    *, license: License, actor=None, ip: str | None = None, by_license: dict | None = None
) -> License:
    """Lift a suspension (the license is EXPIRED again if its time ran out meanwhile)."""
    license = License.objects.select_for_update().get(pk=license.pk)
    if license.status != License.Status.SUSPENDED:
        raise ConflictError("This license is not suspended.", code="license_not_suspended")
    before = _snapshot(license)
    expired = license.expires_at is not None and license.expires_at <= timezone.now()
    license.status = License.Status.EXPIRED if expired else License.Status.ACTIVE
    license.suspended_reason = ""
    license.save(update_fields=["status", "suspended_reason", "updated_at"])
    audit_record(
        action="license.activate",
        obj=license,
        actor=actor,
        ip=ip,
        before=before,
        after=_snapshot(license, by_license),
    )
    license_cache_invalidate(digest=license.key_hash)
    return license


def licenses_expire_due(*, limit: int = 1000) -> int:
    """Mark ACTIVE licenses past their expiry EXPIRED (a bounded batch); return how many."""
    now = timezone.now()
    due = list(
        License.objects.filter(status=License.Status.ACTIVE, expires_at__lte=now)
        .order_by("pk")
        .values_list("pk", "key_hash")[:limit]
    )
    changed = 0
    for pk, digest in due:
        with transaction.atomic():
            if License.objects.filter(
                pk=pk, status=License.Status.ACTIVE, expires_at__lte=now
            ).update(status=License.Status.EXPIRED, updated_at=now):
                changed += 1
                audit_record(
                    action="license.expire",
                    object_type=License._meta.label_lower,
                    object_id=pk,
                    after={"status": License.Status.EXPIRED},
                )
                license_cache_invalidate(digest=digest)
    return changed
