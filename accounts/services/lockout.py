"""The per-account login lockout: failed logins counted per email, whatever the address.

The per-address limits (DRF's throttle, the admin form's middleware) stop one address; this
stops many addresses guessing one account's password. Every attempt is counted before its
password is checked, in one UPDATE under the row's lock, and a success gives its count back:
however many guesses arrive at once, at most `LOGIN_LOCKOUT_MAX_FAILURES` of them are checked
per window. An unknown email is counted exactly like a known one, so the answers never tell
which addresses have accounts.
"""

import math
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, When
from django.utils import timezone

from accounts.models import LoginLockout, User, normalize_email
from core.errors import NotFoundError

from .audit import audit_record

# The longest email the table keeps; a longer "email" is counted under its first 254 chars.
EMAIL_MAX = 254


def _key(email: str) -> str:
    return normalize_email(email)[:EMAIL_MAX]


def _seconds_until(moment, now) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def login_attempt_start(*, email: str, ip: str | None = None) -> int:
    """Count a login attempt for `email` before its password is checked.

    Returns 0 when the password may be checked, else the seconds the email stays locked (the
    answer's Retry-After). The attempt past the limit locks the email and is audited.
    """
    limit = settings.LOGIN_LOCKOUT_MAX_FAILURES
    if limit <= 0 or not email:
        return 0
    key = _key(email)
    now = timezone.now()
    window_start = now - timedelta(seconds=settings.LOGIN_LOCKOUT_WINDOW_SECONDS)
    unlocked = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    stale = Q(window_started_at__lte=window_start)
    with transaction.atomic():
        LoginLockout.objects.bulk_create(
            [LoginLockout(email=key, window_started_at=now)], ignore_conflicts=True
        )
        # One UPDATE counts the attempt (a stale window starts again at this one) and holds
        # the row's lock until this transaction ends, so the count read below is this one's.
        counted = LoginLockout.objects.filter(unlocked, email=key).update(
            failures=Case(When(stale, then=1), default=F("failures") + 1),
            window_started_at=Case(When(stale, then=now), default=F("window_started_at")),
            last_attempt_at=now,
        )
        row = LoginLockout.objects.get(email=key)
        if not counted:  # locked
            return _seconds_until(row.locked_until, now)
        if row.failures <= limit:
            return 0
        locked_until = now + timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
        LoginLockout.objects.filter(pk=row.pk).update(
            failures=0, window_started_at=now, locked_at=now, locked_until=locked_until
        )
        row.locked_at, row.locked_until = now, locked_until
        audit_record(
            action="login.locked",
            obj=row,
            after={"email": key, "failures": limit, "locked_until": locked_until},
            reason=f"{limit} failed logins within {settings.LOGIN_LOCKOUT_WINDOW_SECONDS} s",
            ip=ip,
        )
    return _seconds_until(locked_until, now)


def login_attempt_succeeded(*, email: str) -> None:
    """The password was right: this attempt was no failure, so its count is given back."""
    if settings.LOGIN_LOCKOUT_MAX_FAILURES <= 0 or not email:
        return
    LoginLockout.objects.filter(email=_key(email), failures__gt=0).update(
        failures=F("failures") - 1
    )


def login_lockout_unlock(*, email: str, actor: User | None, ip: str | None = None) -> LoginLockout:
    """Lift a lockout now (staff, or an operator with `actor=None`) and clear its count."""
    key = _key(email)
    with transaction.atomic():
        row = LoginLockout.objects.select_for_update().filter(email=key).first()
        if row is None or not row.is_locked:
            raise NotFoundError("This email is not locked.", code="not_locked")
        before = {"locked_until": row.locked_until}
        now = timezone.now()
        LoginLockout.objects.filter(pk=row.pk).update(
            failures=0, window_started_at=now, locked_until=None
        )
        row.failures, row.window_started_at, row.locked_until = 0, now, None
        audit_record(
            action="login.unlocked",
            obj=row,
            actor=actor,
            before=before,
            after={"email": key, "locked_until": None},
            ip=ip,
        )
    return row
