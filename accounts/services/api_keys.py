"""Integration API keys: `<prefix>.<secret>`, shown once, stored as a hash, revocable."""

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.roles import API_KEY_SCOPES, Role
from core.errors import ApplicationError, ConflictError, ForbiddenError

from .audit import audit_record
from .roles import user_roles

# Recording every use would be a write per request; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(seconds=60)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_scopes_clean(*, scopes: Iterable[str]) -> list[str]:
    """The scopes, known ones only, each once, in the order of `API_KEY_SCOPES`."""
    wanted = set(scopes)
    unknown = sorted(wanted - set(API_KEY_SCOPES))
    if unknown:
        raise ApplicationError(
            f"Unknown API key scope(s): {', '.join(unknown)}. Known: {', '.join(API_KEY_SCOPES)}.",
            code="invalid_scope",
        )
    return [scope for scope in API_KEY_SCOPES if scope in wanted]


def _check_may_grant(actor: User | None) -> None:
    # No actor: an operator at the command line, who holds the whole installation anyway.
    if actor is not None and Role.SUPER_ADMIN not in user_roles(actor):
        raise ForbiddenError(
            "Only a Super Admin may grant API key scopes.", code="scope_grant_forbidden"
        )


@transaction.atomic
def api_key_create(
    *,
    user: User,
    name: str,
    created_by: User | None = None,
    scopes: Iterable[str] = (),
) -> tuple[ApiKey, str]:
    """Make a key for `user`; return it with the full key string, which is never shown again.

    The key acts as `user`; `scopes` add integration powers and only a Super Admin (or an
    operator, `created_by=None`) may grant them.
    """
    scopes = api_key_scopes_clean(scopes=scopes)
    if scopes:
        _check_may_grant(created_by)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        secret_hash=_hash(secret),
        created_by=created_by,
        scopes=scopes,
    )
    audit_record(
        action="api_key.created",
        obj=api_key,
        actor=created_by,
        after={"user": user.email, "name": name, "prefix": prefix, "scopes": scopes},
    )
    return api_key, f"{prefix}.{secret}"


@transaction.atomic
def api_key_set_scopes(*, api_key: ApiKey, scopes: Iterable[str], actor: User | None) -> ApiKey:
    """Give a key exactly these scopes (a Super Admin's or an operator's decision); audited."""
    scopes = api_key_scopes_clean(scopes=scopes)
    _check_may_grant(actor)
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if locked.revoked_at is not None:
        raise ConflictError("This API key is revoked.", code="already_revoked")
    before = list(locked.scopes or [])
    if before == scopes:
        api_key.scopes = scopes
        return api_key
    ApiKey.objects.filter(pk=api_key.pk).update(scopes=scopes)
    api_key.scopes = scopes
    audit_record(
        action="api_key.scopes_set",
        obj=api_key,
        actor=actor,
        before={"scopes": before},
        after={"scopes": scopes},
    )
    return api_key


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
