from datetime import UTC, datetime, timedelta

import django_filters
from django.conf import settings
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import RateLimitedError
from core.net import client_ip

from .. import signing
from ..authentication import LicensingAdminPermission, require_license
from ..errors import MalformedLicenseKeyError
from ..models import License, Subscription
from ..ratelimit import rate_limit_check, rate_limit_peek
from ..selectors import license_detail, licensing_stats
from ..services import (
    license_activate,
    license_create,
    license_create_delivered,
    license_extend,
    license_key_parse,
    license_suspend,
    license_validate,
    subscription_cancel,
    subscription_change,
    subscription_create,
    trade_report,
    trade_stats,
)
from . import serializers as s

LICENSE_KEY_HEADER = OpenApiParameter(
    "X-License-Key", str, OpenApiParameter.HEADER, description="A license key"
)
RATE_LIMITED = OpenApiResponse(description="Over a rate limit; `Retry-After` says when.")
LICENSE_REFUSALS = {
    401: OpenApiResponse(description="`license_key_required`: no or an unknown X-License-Key."),
    403: OpenApiResponse(description="`license_expired`, `license_suspended`: not usable."),
    429: RATE_LIMITED,
}


class RateLimitHeadersMixin:
    """Adds X-RateLimit-* headers of the decision the view took (also to a 429)."""

    rate_limit_decision = None

    def handle_exception(self, exc):
        if isinstance(exc, RateLimitedError) and hasattr(exc, "rate_limit"):
            self.rate_limit_decision = exc.rate_limit
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.rate_limit_decision is not None:
            for name, value in self.rate_limit_decision.headers().items():
                response[name] = value
        return response

    def limit_ip(self, request, scope="public", rate=None):
        self.rate_limit_decision = rate_limit_check(
            scope=scope,
            ident=client_ip(request) or "unknown",
            rate=rate or settings.LICENSE_PUBLIC_RATE_LIMIT,
        )


class PublicView(RateLimitHeadersMixin, APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


class JSONAnswerNegotiation(DefaultContentNegotiation):
    """The answer is JSON whatever the Accept header says (reading it costs more than the
    rest of validation's own work); request bodies are parsed as usual."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


_ABSENT = object()
# The fields of ValidateInputSerializer: (max length, required).
_VALIDATE_FIELDS = (("license_key", 80, True), ("machine_id", 128, False), ("nonce", 128, False))


def _validate_input_fast(data) -> dict | None:
    """The usual body (ASCII strings within their lengths) read as ValidateInputSerializer
    reads it, at a tenth of its cost; None for anything else, which the serializer answers
    with its own field errors."""
    if not isinstance(data, dict):
        return None
    values = {}
    for name, max_length, required in _VALIDATE_FIELDS:
        value = data.get(name, _ABSENT)
        if value is _ABSENT:
            if required:
                return None
            continue
        if type(value) is not str or not value.isascii() or "\x00" in value:
            return None
        value = value.strip()
        if len(value) > max_length or (required and not value):
            return None
        values[name] = value
    return values


class ValidateView(PublicView):
    """Validate a license key: always 200 for a well-formed request, signed with Ed25519.

    The hot path of the API, so it does only what it needs: JSON answers only, no
    authentication, the body read without a serializer when it is the usual one, one Redis
    round trip for the limits, the key's cached snapshot and the usage log
    (`license_validate`), and the signed answer serialized once. A malformed request is
    counted on the per-address limit, then a 400.
    """

    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONAnswerNegotiation

    @extend_schema(
        request=s.ValidateInputSerializer,
        responses={200: s.ValidateAnswerSerializer, 429: RATE_LIMITED},
    )
    def post(self, request):
        try:
            values = _validate_input_fast(request.data)
            if values is None:
                data = s.ValidateInputSerializer(data=request.data)
                data.is_valid(raise_exception=True)
                values = data.validated_data
            key = license_key_parse(values["license_key"])
        except (APIException, MalformedLicenseKeyError):  # bad JSON, field errors, not a key
            self.limit_ip(request, "validate-ip", settings.LICENSE_VALIDATE_RATE_LIMIT_PER_IP)
            raise
        result = license_validate(
            key=key,
            nonce=values.get("nonce"),
            ip=client_ip(request) or "unknown",
            usage=getattr(request._request, "licensing_usage", None),
        )
        self.rate_limit_decision = result.rate_limit
        if result.snapshot is not None:
            request._request.licensing_license_id = result.snapshot["id"]
        return HttpResponse(result.body, content_type="application/json")


class PublicKeyView(PublicView):
    """The Ed25519 public key that signs validation answers and license files."""

    @extend_schema(responses={200: s.PublicKeySerializer, 429: RATE_LIMITED})
    def get(self, request):
        self.limit_ip(request)
        return Response(
            {
                "algorithm": signing.ALGORITHM,
                "public_key": signing.public_key_b64(),
                "signed_bytes": "the answer without `signature`, as JSON with sorted keys "
                "and separators ',' ':' (UTF-8)",
            }
        )


class RateLimitStatusView(PublicView):
    """Where the caller's address stands on the public limit (this call is not counted)."""

    @extend_schema(responses=s.RateLimitStatusSerializer)
    def get(self, request):
        decision = rate_limit_peek(
            scope="public",
            ident=client_ip(request) or "unknown",
            rate=settings.LICENSE_PUBLIC_RATE_LIMIT,
        )
        return Response(
            {
                "limit": decision.limit,
                "remaining": decision.remaining,
                "reset_at": datetime.fromtimestamp(decision.reset_at, tz=UTC),
                "backend": decision.backend,
            }
        )


class TradeViewSet(RateLimitHeadersMixin, viewsets.GenericViewSet):
    """Trades a license holder reports (X-License-Key), and their statistics."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    serializer_class = s.TradeSerializer
    pagination_class = None

    @extend_schema(
        parameters=[LICENSE_KEY_HEADER], responses={201: s.TradeSerializer, **LICENSE_REFUSALS}
    )
    def create(self, request):
        self.limit_ip(request)
        license = require_license(request)
        data = s.TradeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        trade = trade_report(license=license, **data.validated_data)
        return Response(s.TradeSerializer(trade).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[LICENSE_KEY_HEADER],
        responses={200: s.TradeStatsSerializer, **LICENSE_REFUSALS},
    )
    @action(detail=False, methods=["get"])
    def stats(self, request):
        self.limit_ip(request)
        license = require_license(request)
        return Response(s.TradeStatsSerializer(trade_stats(license=license)).data)


class LicenseFilter(django_filters.FilterSet):
    license_type = django_filters.ChoiceFilter(choices=License.Type.choices)
    status = django_filters.ChoiceFilter(choices=License.Status.choices, method="by_status")
    search = django_filters.CharFilter(method="by_search")

    class Meta:
        model = License
        fields = ["license_type", "status", "search"]

    def by_status(self, queryset, name, value):
        now = timezone.now()
        if value == License.Status.SUSPENDED:
            return queryset.filter(status=value)
        expired = Q(expires_at__lte=now)
        if value == License.Status.EXPIRED:
            return queryset.exclude(status=License.Status.SUSPENDED).filter(expired)
        return queryset.exclude(status=License.Status.SUSPENDED).exclude(expired)

    def by_search(self, queryset, name, value):
        return queryset.filter(
            Q(account_id__icontains=value) | Q(email__icontains=value) | Q(notes__icontains=value)
        )


class AdminUserViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Licensed users: Super Admin, or an admin license key in X-License-Key."""

    queryset = License.objects.all()
    serializer_class = s.LicenseSerializer
    filterset_class = LicenseFilter
    permission_classes = [LicensingAdminPermission]
    lookup_field = "account_id"
    lookup_value_regex = r"[^/]+"

    def _who(self) -> dict:
        """Who changes: the signed-in user, or (actor None) the ADMIN license of X-License-Key,
        named in the audit event."""
        user = self.request.user
        if user and user.is_authenticated:
            return {"actor": user, "ip": client_ip(self.request)}
        license_id = getattr(self.request._request, "licensing_admin_license_id", None)
        by_license = (
            License.objects.filter(pk=license_id).values("account_id", "key_last4").first()
            if license_id
            else None
        )
        return {"actor": None, "ip": client_ip(self.request), "by_license": by_license}

    @extend_schema(
        request=s.LicenseCreateSerializer,
        responses={
            201: s.LicenseCreatedSerializer,
            409: OpenApiResponse(description="`license_exists`: this account has a license."),
        },
    )
    def create(self, request):
        data = s.LicenseCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        fields = {
            "account_id": values["account_id"],
            "email": values["email"],
            "license_type": values["license_type"],
            "duration_days": values.get("license_duration_days"),
            "notes": values["notes"],
            **self._who(),
        }
        if values["delivery_method"]:
            license, delivery = license_create_delivered(
                method=values["delivery_method"], contact=values["contact_info"], **fields
            )
            license.license_key = None
        else:
            license, license.license_key = license_create(**fields)
            delivery = None
        license.delivery = delivery
        return Response(s.LicenseCreatedSerializer(license).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.LicenseDetailSerializer)
    def retrieve(self, request, account_id=None):
        return Response(s.LicenseDetailSerializer(license_detail(license=self.get_object())).data)

    @extend_schema(
        request=s.ExtendSerializer,
        responses={
            200: s.LicenseSerializer,
            409: OpenApiResponse(description="`license_never_expires`: nothing to extend."),
        },
    )
    @action(detail=True, methods=["put"], url_path="extend-license")
    def extend_license(self, request, account_id=None):
        data = s.ExtendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        license = license_extend(
            license=self.get_object(),
            days=data.validated_data["additional_days"],
            **self._who(),
        )
        return Response(s.LicenseSerializer(license).data)

    @extend_schema(
        request=s.SuspendSerializer,
        responses={
            200: s.LicenseSerializer,
            409: OpenApiResponse(description="`license_suspended`: suspended already."),
        },
    )
    @action(detail=True, methods=["put"])
    def suspend(self, request, account_id=None):
        data = s.SuspendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        license = license_suspend(
            license=self.get_object(),
            reason=data.validated_data["reason"],
            **self._who(),
        )
        return Response(s.LicenseSerializer(license).data)

    @extend_schema(
        request=None,
        responses={
            200: s.LicenseSerializer,
            409: OpenApiResponse(description="`license_not_suspended`: active already."),
        },
    )
    @action(detail=True, methods=["put"])
    def activate(self, request, account_id=None):
        license = license_activate(license=self.get_object(), **self._who())
        return Response(s.LicenseSerializer(license).data)


class AdminStatsView(APIView):
    permission_classes = [LicensingAdminPermission]

    @extend_schema(responses=s.StatsSerializer)
    def get(self, request):
        return Response(s.StatsSerializer(licensing_stats()).data)


class LicenseFileView(APIView):
    """A signed license file (Ed25519, short lifetime) a client verifies offline."""

    permission_classes = [LicensingAdminPermission]

    @extend_schema(responses=s.LicenseFileSerializer)
    def get(self, request, account_id):
        license = get_object_or_404(License, account_id=account_id)
        now = timezone.now()
        not_after = now + timedelta(hours=settings.LICENSE_FILE_TTL_HOURS)
        if license.expires_at is not None:
            not_after = min(not_after, license.expires_at)
        body = {
            "account_id": license.account_id,
            "license_type": license.license_type,
            "code": license.code_at(now),
            "expires_at": license.expires_at.isoformat() if license.expires_at else None,
            "key_last4": license.key_last4,
            "issued_at": now.isoformat(),
            "not_after": not_after.isoformat(),
        }
        return Response(
            {
                "license": body,
                "algorithm": signing.ALGORITHM,
                "public_key": signing.public_key_b64(),
                "signature": signing.sign(body),
            }
        )


class SubscriptionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The caller's own subscriptions; plans carry the quotas."""

    serializer_class = s.SubscriptionSerializer
    permission_classes = [IsAuthenticated]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscription.objects.none()
        return Subscription.objects.filter(user=self.request.user).select_related("plan")

    @extend_schema(request=s.SubscriptionInputSerializer, responses={201: s.SubscriptionSerializer})
    def create(self, request):
        data = s.SubscriptionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = subscription_create(
            user=request.user, plan_code=data.validated_data["plan"], ip=client_ip(request)
        )
        return Response(s.SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.SubscriptionInputSerializer,
        responses={
            200: s.SubscriptionSerializer,
            409: OpenApiResponse(description="`subscription_cancelled`: cancelled already."),
        },
    )
    def partial_update(self, request, pk=None):
        data = s.SubscriptionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = subscription_change(
            subscription=self.get_object(),
            plan_code=data.validated_data["plan"],
            actor=request.user,
            ip=client_ip(request),
        )
        return Response(s.SubscriptionSerializer(subscription).data)

    @extend_schema(
        request=None,
        responses={
            204: None,
            409: OpenApiResponse(description="`subscription_cancelled`: cancelled already."),
        },
    )
    def destroy(self, request, pk=None):
        subscription_cancel(
            subscription=self.get_object(), actor=request.user, ip=client_ip(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
