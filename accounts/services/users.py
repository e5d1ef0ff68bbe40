"""Users: registration, profile, password change, roles, deactivation."""

import re
import unicodedata

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import TokenFamily, User, normalize_email
from accounts.roles import STAFF_ROLES, Role
from accounts.signals import user_deactivated
from core.errors import ApplicationError, RateLimitedError

from .api_keys import api_key_revoke_all
from .audit import audit_record
from .lockout import login_attempt_start, login_attempt_succeeded
from .tokens import TokenPair, token_families_revoke_all, token_pair_issue

# Names only the house may wear: a client called "Admin" or "support_team" could pass for staff
# in a chat or a screenshot. Compared after folding case, look-alike letters and separators.
RESERVED_USERNAMES = (
    "admin",
    "administrator",
    "root",
    "support",
    "staff",
    "brokerdesk",
    "system",
    "superuser",
    "security",
    "helpdesk",
    "moderator",
    "official",
)
# Cyrillic and Greek letters that look like Latin ones, and the digits people type for letters.
_LOOK_ALIKES = str.maketrans(
    "аеорсухіјѕԁкмтнпԛɡαοριντκυ",
    "aeopcyxijsdkmthnqgaopivtku",
)
_DIGITS_AS_LETTERS = str.maketrans("013457", "oieast")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def username_is_reserved(username: str) -> bool:
    """True when the name reads as one of `RESERVED_USERNAMES`: whole, or one of its words
    (`the.admin`, `Support Team`, "admin" with a Cyrillic "a", `adm1n`, `root_01`)."""
    folded = unicodedata.normalize("NFKC", username).casefold().translate(_LOOK_ALIKES)
    words = [w for w in _SEPARATORS.split(folded) if w]
    candidates = {"".join(words)} | set(words)
    for word in list(candidates):
        candidates |= {word.rstrip("0123456789"), word.translate(_DIGITS_AS_LETTERS)}
    return bool(candidates & set(RESERVED_USERNAMES))


def username_check(*, username: str, user: User | None = None) -> None:
    """Refuse a reserved name (400 `username_reserved`) or one another user holds, whatever
    its case (400 `username_taken`). The database's constraint settles a race."""
    if not username:
        return
    if username_is_reserved(username):
        raise ApplicationError("This username is reserved.", code="username_reserved")
    others = User.objects.filter(username__iexact=username)
    if user is not None:
        others = others.exclude(pk=user.pk)
    if others.exists():
        raise ApplicationError("This username is taken.", code="username_taken")


def user_register(*, email: str, password: str, username: str = "", ip: str | None = None) -> User:
    """Create a client account; the caller has validated the password's strength."""
    username_check(username=username)
    with transaction.atomic():
        try:
            # Only the user's own insert may mean "taken"; any other failure is not that.
            with transaction.atomic():
                user = User.objects.create_user(email=email, password=password, username=username)
        except IntegrityError as exc:
            if username and not user_email_taken(email=email):
                raise ApplicationError("This username is taken.", code="username_taken") from exc
            raise ApplicationError(
                "An account with this email already exists.", code="email_taken"
            ) from exc
        audit_record(
            action="user.registered", obj=user, actor=user, after={"email": user.email}, ip=ip
        )
    return user


def user_email_taken(*, email: str) -> bool:
    return User.objects.filter(email=normalize_email(email)).exists()


def user_update(
    *, user: User, username: str | None = None, email: str | None = None, ip: str | None = None
) -> User:
    """Change what a user may change about themselves: the username.

    The email is the login and there is no flow that proves a new address is the user's:
    another one is 400 `email_change_unsupported` (staff change it in the admin); the
    current one, in any case, is no change."""
    if email is not None and normalize_email(email) != user.email:
        raise ApplicationError(
            "The email cannot be changed here; ask support to change it.",
            code="email_change_unsupported",
        )
    if username is None:
        return user
    if username != user.username:
        username_check(username=username, user=user)
    before = {"username": user.username}
    try:
        with transaction.atomic():
            User.objects.filter(pk=user.pk).update(username=username)
    except IntegrityError as exc:
        raise ApplicationError("This username is taken.", code="username_taken") from exc
    user.username = username
    audit_record(
        action="user.updated",
        obj=user,
        actor=user,
        before=before,
        after={"username": username},
        ip=ip,
    )
    return user


def user_password_change(
    *, user: User, old_password: str, new_password: str, ip: str | None = None
) -> TokenPair:
    """Set a new password (the caller has validated its strength) once the old one is right;
    end every login of the user and return a fresh token pair for the caller.

    The old password is checked behind the per-account lockout, counted before it is checked
    as a login is: 429 `account_locked` past the limit, 400 `wrong_password` before it."""
    if old_password == new_password:
        raise ApplicationError("The new password is the old one.", code="password_unchanged")
    locked_for = login_attempt_start(email=user.email, ip=ip)
    if locked_for:
        raise RateLimitedError(
            "Too many failed logins for this account: it is locked for now.",
            code="account_locked",
            retry_after=locked_for,
        )
    with transaction.atomic():
        # The row's lock: of two changes at once, the second checks the first one's password.
        locked = User.objects.select_for_update().get(pk=user.pk)
        if not locked.check_password(old_password):
            raise ApplicationError("The current password is wrong.", code="wrong_password")
        login_attempt_succeeded(email=user.email)
        locked.set_password(new_password)
        locked.save(update_fields=["password"])
        revoked = token_families_revoke_all(user=locked, reason=TokenFamily.Reason.PASSWORD)
        pair = token_pair_issue(user=locked)
        audit_record(
            action="user.password_changed",
            obj=locked,
            actor=locked,
            after={"refresh_tokens_revoked": revoked},
            ip=ip,
        )
    user.password = locked.password
    return pair


@transaction.atomic
def user_deactivate(*, user: User, actor: User | None = None, ip: str | None = None) -> None:
    """Deactivate a user, revoke every refresh token and API key they hold, and have the apps
    that run things for them stop (`user_deactivated`), all in one transaction."""
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
    user_deactivated.send(sender=User, user=user)
    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
    api_key_revoke_all(user=user, actor=actor or user)
    audit_record(
        action="user.deactivated", obj=user, actor=actor or user, after={"is_active": False}, ip=ip
    )


@transaction.atomic
def user_set_roles(*, user: User, roles: list[Role], actor: User | None = None) -> User:
    """Give a user exactly these staff roles; staff roles imply admin access (is_staff)."""
    before = sorted(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))
    user.groups.remove(*Group.objects.filter(name__in=STAFF_ROLES))
    user.groups.add(*Group.objects.filter(name__in=[r.value for r in roles]))
    user.is_staff = bool(roles) or user.is_superuser
    user.save(update_fields=["is_staff"])
    user.__dict__.pop("_brokerdesk_roles", None)
    audit_record(
        action="user.roles_set",
        obj=user,
        actor=actor,
        before={"roles": before},
        after={"roles": sorted(r.value for r in roles)},
    )
    return user
