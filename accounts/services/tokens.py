"""JWT refresh tokens in families: issued at login, rotated once each, revoked together.

A login starts a family: its refresh token's `jti` is the family's key, carried by every
descendant in the `fam` claim. A refresh takes the family row's lock, blacklists the presented
token (the `BlacklistedToken` unique constraint is the backstop) and only then issues the new
pair: of any number of concurrent refreshes of one token exactly one succeeds; the others get
401. A rotated token presented again after `JWT_REFRESH_REUSE_GRACE_SECONDS` means someone
else holds a copy: the whole family is revoked, the thief's and the owner's tokens alike.
Logout revokes the family too. Refresh tokens issued before families existed count as the
root of their own family. A password change revokes every family of the user at once.

Access tokens stay valid until they expire (`JWT_ACCESS_MINUTES`): they are not looked up.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import update_last_login
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.models import TokenFamily, TokenFamilyMember, User

FAMILY_CLAIM = "fam"


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


class TokenRefused(TokenError):
    """The refresh token is valid in form but may not be used (401 `token_not_valid`)."""


class _PresentedRefreshToken(RefreshToken):
    """A refresh token as presented: signature, expiry and type checked on decoding; whether it
    was used already is decided under the family's lock, not here."""

    def verify(self) -> None:
        Token.verify(self)


def _user_id(user: User) -> str:
    return str(getattr(user, api_settings.USER_ID_FIELD))


def _issue(*, user: User, family: TokenFamily | None) -> TokenPair:
    """A new refresh token (outstanding, member of `family` or the root of a new one)."""
    refresh = RefreshToken()  # a new token: jti, exp, iat; not yet recorded anywhere
    refresh[api_settings.USER_ID_CLAIM] = _user_id(user)
    jti = refresh[api_settings.JTI_CLAIM]
    if family is None:
        family = TokenFamily.objects.create(key=jti, user=user)
    refresh[FAMILY_CLAIM] = family.key
    outstanding = OutstandingToken.objects.create(
        user=user,
        jti=jti,
        token=str(refresh),
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    TokenFamilyMember.objects.create(family=family, outstanding=outstanding)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


@transaction.atomic
def token_pair_issue(*, user: User) -> TokenPair:
    """Tokens for a login or a sign-up: the first of a new family."""
    pair = _issue(user=user, family=None)
    if api_settings.UPDATE_LAST_LOGIN:
        # Called as simplejwt calls it: the receiver ignores its sender.
        update_last_login(None, user)  # type: ignore[arg-type]
    return pair


def _decode(raw: str) -> _PresentedRefreshToken:
    # simplejwt annotates the encoded token as a `Token`; it takes the string.
    token = _PresentedRefreshToken(raw)  # type: ignore[arg-type]  # raises TokenError: bad signature, expired, not refresh
    if not token.get(api_settings.USER_ID_CLAIM):
        raise TokenError("Token contained no recognizable user identification")
    return token


def _family_locked(*, key: str, user: User | None) -> TokenFamily:
    # A token from before families is the root of its own; two first refreshes of it at once
    # both reach the row (get_or_create retries on the unique key), then queue on its lock.
    family, _ = TokenFamily.objects.get_or_create(key=key, defaults={"user": user})
    return TokenFamily.objects.select_for_update().get(pk=family.pk)


def _outstanding(token: RefreshToken, user: User | None) -> OutstandingToken:
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=token[api_settings.JTI_CLAIM],
        defaults={
            "user": user,
            "token": str(token),
            "created_at": token.current_time,
            "expires_at": datetime_from_epoch(token["exp"]),
        },
    )
    return outstanding


def _revoke(*, family: TokenFamily, reason: str, token: RefreshToken | None = None) -> int:
    """Blacklist every outstanding token of the family (the family's row is locked)."""
    now = timezone.now()
    if family.revoked_at is None:
        TokenFamily.objects.filter(pk=family.pk).update(revoked_at=now, revoked_reason=reason)
        family.revoked_at, family.revoked_reason = now, reason
    outstanding = list(
        OutstandingToken.objects.filter(family_member__family=family, blacklistedtoken__isnull=True)
    )
    if token is not None:  # a token from before families is no member of its own
        own = _outstanding(token, family.user)
        if not BlacklistedToken.objects.filter(token=own).exists():
            outstanding.append(own)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=row) for row in outstanding], ignore_conflicts=True
    )
    return len(outstanding)


def token_refresh(*, raw: str) -> TokenPair:
    """Rotate a refresh token: exactly one refresh of a token succeeds, the rest raise.

    Raises `TokenError` (401 `token_not_valid`) for a bad, expired, used or revoked token;
    a used one presented after the grace period revokes its whole family first.
    """
    token = _decode(raw)
    users = User.objects.filter(**{api_settings.USER_ID_FIELD: token[api_settings.USER_ID_CLAIM]})
    user = users.first()
    if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
        raise TokenRefused("No active account found for the given token.")
    jti = token[api_settings.JTI_CLAIM]
    refused = None
    with transaction.atomic():
        family = _family_locked(key=token.get(FAMILY_CLAIM) or jti, user=user)
        if family.revoked_at is not None:
            refused = "This session has ended: log in again."
        else:
            outstanding = _outstanding(token, user)
            try:
                with transaction.atomic():
                    BlacklistedToken.objects.create(token=outstanding)
            except IntegrityError:
                used_at = BlacklistedToken.objects.get(token=outstanding).blacklisted_at
                grace = timedelta(seconds=settings.JWT_REFRESH_REUSE_GRACE_SECONDS)
                if timezone.now() - used_at > grace:
                    # Used long ago and presented again: a copy is in other hands.
                    _revoke(family=family, reason=TokenFamily.Reason.REUSE)
                refused = "Token is blacklisted"
            else:
                pair = _issue(user=user, family=family)
    if refused is not None:  # after the block: a revocation for reuse must stay committed
        raise TokenRefused(refused)
    return pair


@transaction.atomic
def token_family_revoke(*, raw: str, reason: str = TokenFamily.Reason.LOGOUT) -> int:
    """Logout: blacklist every token of the presented token's family; used or not, any member
    ends the family. Returns how many tokens were blacklisted now."""
    token = _decode(raw)
    user = User.objects.filter(
        **{api_settings.USER_ID_FIELD: token[api_settings.USER_ID_CLAIM]}
    ).first()
    jti = token[api_settings.JTI_CLAIM]
    family = _family_locked(key=token.get(FAMILY_CLAIM) or jti, user=user)
    return _revoke(family=family, reason=reason, token=token)


@transaction.atomic
def token_families_revoke_all(*, user: User, reason: str) -> int:
    """End every login of the user: all their families revoked, every refresh token they hold
    blacklisted (those from before families too). Returns how many tokens were blacklisted.

    The families' rows are updated first, so a refresh in progress (it holds its family's
    lock) commits before this reads the tokens to blacklist, and one that starts later finds
    its family revoked."""
    now = timezone.now()
    TokenFamily.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=now, revoked_reason=reason
    )
    outstanding = list(OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True))
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=row) for row in outstanding], ignore_conflicts=True
    )
    return len(outstanding)
