from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.services import user_deactivate, user_register, user_update

from .serializers import (
    LogoutInputSerializer,
    MeSerializer,
    MeUpdateSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
)


def client_ip(request) -> str | None:
    """The caller's address as the first trusted proxy saw it (REMOTE_ADDR behind none)."""
    return request.META.get("REMOTE_ADDR")


class LoginView(TokenObtainPairView):
    throttle_scope = "auth"


class RefreshView(TokenRefreshView):
    throttle_scope = "auth"


class LogoutView(APIView):
    """Blacklist a refresh token: it can no longer be refreshed."""

    permission_classes = [AllowAny]

    @extend_schema(request=LogoutInputSerializer, responses={205: None})
    def post(self, request):
        data = LogoutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            RefreshToken(data.validated_data["refresh"]).blacklist()
        except TokenError as exc:
            raise InvalidToken(str(exc)) from exc
        return Response(status=status.HTTP_205_RESET_CONTENT)


class RegisterView(APIView):
    """A client signs up with email and password and is logged in at once."""

    permission_classes = [AllowAny]
    throttle_scope = "auth"

    @extend_schema(request=RegisterInputSerializer, responses={201: RegisterOutputSerializer})
    def post(self, request):
        data = RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_register(**data.validated_data, ip=client_ip(request))
        refresh = RefreshToken.for_user(user)
        out = {"id": user.pk, "email": user.email, "access": str(refresh.access_token)}
        out["refresh"] = str(refresh)
        return Response(RegisterOutputSerializer(out).data, status=status.HTTP_201_CREATED)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(request=MeUpdateSerializer, responses=MeSerializer)
    def patch(self, request):
        data = MeUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if "username" in data.validated_data:
            user_update(
                user=request.user,
                username=data.validated_data["username"],
                ip=client_ip(request),
            )
        return Response(MeSerializer(request.user).data)

    @extend_schema(responses={204: None})
    def delete(self, request):
        user_deactivate(user=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
