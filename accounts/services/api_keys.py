"""Integration API keys: `<prefix>.<secret>`, shown once, stored as a hash, revocable."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.errors import ConflictError
from accounts.models import ApiKey, User

from .audit import audit_record

# Recording every use would be a write per request; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(seconds=60)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, user: User, name: str, created_by: User | None = None) -> tuple[ApiKey, str]:
    """Make a key for `user`; return it with the full key string, which is never shown again."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        user=user, name=name, prefix=prefix, secret_hash=_hash(secret), created_by=created_by
    )
    audit_record(
        action="api_key.created",
        obj=api_key,
        actor=created_by,
        after={"user": user.email, "name": name, "prefix": prefix},
    )
    return api_key, f"{prefix}.{secret}"


def api_key_authenticate(*, raw: str) -> ApiKey | None:
    """The active key this string is, with its active user, or None."""
    prefix, _, secret = raw.partition(".")
    if not prefix or not secret:
        return None
    api_key = (
        ApiKey.objects.select_related("user")
        .filter(prefix=prefix, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, _hash(secret)):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User | None = None, reason: str = "") -> ApiKey:
    """Revoke a key for good; revoking a revoked key is a conflict."""
    now = timezone.now()
    if not ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now):
        raise ConflictError("This API key is already revoked.", code="already_revoked")
    api_key.revoked_at = now
    audit_record(
        action="api_key.revoked",
        obj=api_key,
        actor=actor,
        before={"revoked_at": None},
        after={"revoked_at": now},
        reason=reason,
    )
    return api_key


def api_key_revoke_all(*, user: User, actor: User | None = None) -> int:
    """Revoke every active key of a user (when the user is deactivated)."""
    revoked = 0
    for api_key in ApiKey.objects.filter(user=user, revoked_at__isnull=True):
        api_key_revoke(api_key=api_key, actor=actor, reason="user deactivated")
        revoked += 1
    return revoked
