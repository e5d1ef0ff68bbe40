from decimal import Decimal

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.models import ApiKey, MonitoredAccount
from accounts.permissions import area_permission
from accounts.selectors import monitor_status, monitored_accounts
from accounts.services import (
    monitor_register,
    monitor_reset_errors,
    monitor_sweep,
    monitor_test_deal,
    token_family_revoke,
    token_pair_issue,
    user_deactivate,
    user_password_change,
    user_register,
    user_update,
)
from core.errors import ApplicationError, NotFoundError
from core.money import MAX_BIGINT
from core.net import client_ip

from .filters import MonitoredAccountFilter
from .serializers import (
    LogoutInputSerializer,
    MeSerializer,
    MeUpdateSerializer,
    MonitoredAccountSerializer,
    MonitoringErrorSerializer,
    MonitoringStatusSerializer,
    PasswordChangeInputSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    SweepResultSerializer,
    TestDealInputSerializer,
    TestDealOutputSerializer,
)
from .token_serializers import LoginSerializer, RefreshSerializer, TokenPairSerializer


@extend_schema_view(
    post=extend_schema(
        responses={
            200: TokenPairSerializer,
            401: OpenApiResponse(description="`no_active_account`: wrong email or password."),
            429: OpenApiResponse(
                description="`account_locked`: too many failed logins for this email, from any "
                "address; even the right password waits for `Retry-After`. Or throttled."
            ),
        }
    )
)
class LoginView(TokenObtainPairView):
    serializer_class = LoginSerializer
    throttle_scope = "auth"


@extend_schema_view(
    post=extend_schema(
        responses={
            200: TokenPairSerializer,
            401: OpenApiResponse(
                description="`token_not_valid`: the refresh token is bad, expired, used or "
                "logged out. A used one presented again ends every token of its login."
            ),
        }
    )
)
class RefreshView(TokenRefreshView):
    serializer_class = RefreshSerializer
    throttle_scope = "auth"


class LogoutView(APIView):
    """End a login: its refresh token and every one rotated from it can no longer refresh."""

    permission_classes = [AllowAny]

    @extend_schema(request=LogoutInputSerializer, responses={205: None})
    def post(self, request):
        data = LogoutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            token_family_revoke(raw=data.validated_data["refresh"])
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
        pair = token_pair_issue(user=user)
        out = {"id": user.pk, "email": user.email, "access": pair.access, "refresh": pair.refresh}
        return Response(RegisterOutputSerializer(out).data, status=status.HTTP_201_CREATED)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(
        request=MeUpdateSerializer,
        responses={
            200: MeSerializer,
            400: OpenApiResponse(
                description="`email_change_unsupported`: another email than the current one "
                "(nothing is changed); `username_taken`, `username_reserved`."
            ),
        },
    )
    def patch(self, request):
        data = MeUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        user_update(user=request.user, **data.validated_data, ip=client_ip(request))
        return Response(MeSerializer(request.user).data)

    @extend_schema(responses={204: None})
    def delete(self, request):
        user_deactivate(user=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class LoggedInWithPassword(BasePermission):
    """A JWT login, not an API key: a key acts for its user, never as their password's owner."""

    message = "Log in with your email and password to do this; an API key may not."
    code = "login_required"

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated) and not isinstance(
            request.auth, ApiKey
        )


class PasswordChangeView(APIView):
    """Change your password: every login of yours ends, this one gets a fresh token pair."""

    permission_classes = [IsAuthenticated, LoggedInWithPassword]
    throttle_scope = "auth"

    @extend_schema(
        request=PasswordChangeInputSerializer,
        responses={
            200: TokenPairSerializer,
            400: OpenApiResponse(
                description="`wrong_password`, `password_unchanged`, or `new_password` "
                "refused by the password rules."
            ),
            403: OpenApiResponse(description="`login_required`: called with an API key."),
            429: OpenApiResponse(
                description="`account_locked`: too many wrong passwords for this account "
                "(logins and changes count together), with `Retry-After`. Or throttled."
            ),
        },
    )
    def post(self, request):
        data = PasswordChangeInputSerializer(data=request.data, context={"user": request.user})
        data.is_valid(raise_exception=True)
        pair = user_password_change(user=request.user, **data.validated_data, ip=client_ip(request))
        return Response(TokenPairSerializer(pair).data)


# --- Monitoring: staff read, Super Admin acts -------------------------------------------------

MonitoringPermission = area_permission("monitoring.read", "monitoring.write")


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(MonitoringErrorSerializer, description=description)


NOT_MONITORED = _error("`not_monitored`: the monitor does not watch this login.")
BAD_LOGIN = _error("`invalid_login`: not an MT5 login.")
BAD_AMOUNT = OpenApiResponse(description="`amount` missing, not more than zero, or over 2 dp.")
LOGIN = OpenApiParameter("login", int, OpenApiParameter.PATH, description="The MT5 login.")


class MonitoringStatusView(APIView):
    """How many accounts are watched and paused, the last sweep, the events waiting."""

    permission_classes = [MonitoringPermission]

    @extend_schema(responses=MonitoringStatusSerializer)
    def get(self, request):
        return Response(MonitoringStatusSerializer(monitor_status()).data)


class MonitoringSweepView(APIView):
    """One full sweep, run now in this request; its events are dispatched before it answers."""

    permission_classes = [MonitoringPermission]

    @extend_schema(request=None, responses=SweepResultSerializer)
    def post(self, request):
        return Response(SweepResultSerializer(monitor_sweep().as_dict()).data)


class MonitoredAccountViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The monitored accounts with their snapshots; register, resume, test deals by login."""

    serializer_class = MonitoredAccountSerializer
    filterset_class = MonitoredAccountFilter
    permission_classes = [MonitoringPermission]
    lookup_field = "login"
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return monitored_accounts()

    def get_object(self) -> MonitoredAccount:
        row = self.get_queryset().filter(login=self._login()).first()
        if row is None:
            raise NotFoundError("This MT5 account is not monitored.", code="not_monitored")
        self.check_object_permissions(self.request, row)
        return row

    def _login(self) -> int:
        login = int(self.kwargs["login"])
        if not 0 < login <= MAX_BIGINT:
            raise ApplicationError("An MT5 login is a positive integer.", code="invalid_login")
        return login

    @extend_schema(
        parameters=[LOGIN],
        responses={200: MonitoredAccountSerializer, 400: BAD_LOGIN, 404: NOT_MONITORED},
        description="One monitored account and its snapshot.",
    )
    def retrieve(self, request, *args, **kwargs):
        return Response(MonitoredAccountSerializer(self.get_object()).data)

    @extend_schema(
        parameters=[LOGIN],
        request=None,
        responses={
            200: MonitoredAccountSerializer,
            400: BAD_LOGIN,
            404: _error("`account_not_found`: the MT5 server has no such login."),
        },
        description="Watch this login from now on (idempotent: a monitored one is returned).",
    )
    @action(detail=True, methods=["post"])
    def register(self, request, login=None):
        row = monitor_register(login=self._login(), actor=request.user)
        return Response(MonitoredAccountSerializer(row).data)

    @extend_schema(
        parameters=[LOGIN],
        request=None,
        responses={200: MonitoredAccountSerializer, 400: BAD_LOGIN, 404: NOT_MONITORED},
        description="Resume a paused account: active again, with no errors.",
    )
    @action(detail=True, methods=["post"], url_path="reset-errors")
    def reset_errors(self, request, login=None):
        row = monitor_reset_errors(login=self._login(), actor=request.user)
        return Response(MonitoredAccountSerializer(row).data)

    @extend_schema(
        parameters=[LOGIN],
        request=TestDealInputSerializer,
        responses={201: TestDealOutputSerializer, 400: BAD_AMOUNT, 404: NOT_MONITORED},
        description="Post a balance deal on the MT5 server; the monitor detects it as a deposit.",
    )
    @action(detail=True, methods=["post"], url_path="test-deposit")
    def test_deposit(self, request, login=None):
        return self._test_deal(request, sign=Decimal(1))

    @extend_schema(
        parameters=[LOGIN],
        request=TestDealInputSerializer,
        responses={
            201: TestDealOutputSerializer,
            400: BAD_AMOUNT,
            404: NOT_MONITORED,
            409: _error("`insufficient_balance`: the server refused a withdrawal beyond it."),
        },
        description="Take `amount` off the balance on the MT5 server; the monitor detects it "
        "as a withdrawal.",
    )
    @action(detail=True, methods=["post"], url_path="test-withdraw")
    def test_withdraw(self, request, login=None):
        return self._test_deal(request, sign=Decimal(-1))

    def _test_deal(self, request, *, sign: Decimal) -> Response:
        data = TestDealInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deal_id = monitor_test_deal(
            login=self._login(), amount=sign * data.validated_data["amount"], actor=request.user
        )
        out = TestDealOutputSerializer({"deal_id": deal_id}).data
        return Response(out, status=status.HTTP_201_CREATED)
