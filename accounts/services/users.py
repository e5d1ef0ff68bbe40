"""Users: registration, profile, roles, deactivation."""

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.errors import ApplicationError
from accounts.models import User, normalize_email
from accounts.roles import STAFF_ROLES, Role

from .api_keys import api_key_revoke_all
from .audit import audit_record


def user_register(*, email: str, password: str, username: str = "", ip: str | None = None) -> User:
    """Create a client account; the caller has validated the password's strength."""
    with transaction.atomic():
        try:
            # Only the user's own insert may mean "taken"; any other failure is not that.
            with transaction.atomic():
                user = User.objects.create_user(email=email, password=password, username=username)
        except IntegrityError as exc:
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
    before = {"username": user.username}
    user.username = username
    user.save(update_fields=["username"])
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
    """Deactivate a user and revoke every refresh token and API key they hold."""
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
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
