"""`Authorization: Api-Key <prefix>.<secret>`: an integration acting as its user."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

KEYWORD = "Api-Key"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed Api-Key header.", code="invalid_api_key")
        from accounts.services import api_key_authenticate

        api_key = api_key_authenticate(raw=parts[1].decode("latin-1"))
        if api_key is None:
            raise AuthenticationFailed("Invalid or revoked API key.", code="invalid_api_key")
        return api_key.user, api_key

    def authenticate_header(self, request):
        return KEYWORD


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <prefix>.<secret>`; the key acts as the user it belongs to.",
        }
