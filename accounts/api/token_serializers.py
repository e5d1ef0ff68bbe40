"""simplejwt's login and refresh views, with this product's services behind them: the login
goes through the per-account lockout and starts a token family; a refresh rotates under the
family's lock (`accounts.services.tokens`)."""

from dataclasses import asdict

from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenObtainSerializer,
    TokenRefreshSerializer,
)

from accounts.backends import locked_for
from accounts.services import token_pair_issue, token_refresh
from core.errors import RateLimitedError


class TokenPairSerializer(serializers.Serializer):
    """What a login or a refresh answers (for the schema)."""

    access = serializers.CharField()
    refresh = serializers.CharField(help_text="Rotated by each refresh, which spends this one.")


class LoginSerializer(TokenObtainPairSerializer):
    def validate(self, attrs):
        try:
            TokenObtainSerializer.validate(self, attrs)  # authenticate(): sets self.user
        except AuthenticationFailed:
            seconds = locked_for(self.context.get("request"))
            if seconds:
                raise RateLimitedError(
                    "Too many failed logins for this account: it is locked for now.",
                    code="account_locked",
                    retry_after=seconds,
                ) from None
            raise
        return asdict(token_pair_issue(user=self.user))


class RefreshSerializer(TokenRefreshSerializer):
    def validate(self, attrs):
        return asdict(token_refresh(raw=attrs["refresh"]))
