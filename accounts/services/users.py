"""Users: registration, profile, roles, deactivation."""

import re
import unicodedata

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.errors import ApplicationError
from accounts.models import User, normalize_email
from accounts.roles import STAFF_ROLES, Role
from accounts.signals import user_deactivated

from .api_keys import api_key_revoke_all
from .audit import audit_record

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


def user_update(*, user: User, username: str, ip: str | None = None) -> User:
    """Change what a user may change about themselves."""
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
