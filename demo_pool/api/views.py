import math
import re

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import area_permission
from delivery.models import Delivery
from delivery.services import DeliveryResult, delivery_result
from demo_pool import services
from demo_pool.errors import (
    ActivationRequestNotFoundError,
    IdempotencyKeyInvalidError,
    PressPassNotFoundError,
)
from demo_pool.models import ActivationRequest
from demo_pool.selectors import pool_status, press_pass_current
from demo_pool.services import ActivationResult

from .serializers import (
    AccountHealthSerializer,
    ActivatedSerializer,
    ActivateInputSerializer,
    ActivationRequestSerializer,
    DemoErrorSerializer,
    PoolStatusSerializer,
    QueuedSerializer,
    ReplenishedSerializer,
    ReplenishQuerySerializer,
    ResendInputSerializer,
    ResentSerializer,
)

LIVE_DELIVERY = (Delivery.Status.PENDING, Delivery.Status.SENT)


def _account(account, press_pass) -> dict:
    return {
        "login": account.login,
        "server": account.server,
        "balance": account.balance,
        "leverage": account.leverage,
        "currency": account.currency,
        "expires_at": press_pass.expires_at,
    }


def _delivery(delivery: Delivery) -> dict:
    return {"id": delivery.pk, "method": delivery.method, "status": delivery.status}


def _handed(result: DeliveryResult) -> dict:
    """The delivery, with the link (and QR code) only where delivery says the caller gets it."""
    out = _delivery(result.delivery)
    if result.caller_link:
        out["link"] = result.caller_link
        if result.qr_svg is not None:
            out["qr_svg"] = result.qr_svg
    return out


# A UUID, or any client-made string of 16 to 128 of these; an RFC 8941 string ("...") too,
# as the IETF's Idempotency-Key draft writes it.
_IDEMPOTENCY_KEY = re.compile(r'"?([A-Za-z0-9._:~+/=-]{16,128})"?')

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Optional. A retry with the same key, user_id and body (same caller) replays "
    "the first answer, link included, while the link lives (header `Idempotent-Replayed: "
    "true`); concurrent ones wait for the first. 16 to 128 of `A-Z a-z 0-9 - _ . : ~ + / =` "
    "(a UUID is ideal), optionally in double quotes; else 400 `idempotency_key_invalid`.",
)


def idempotency_key(request) -> str | None:
    """The request's `Idempotency-Key`, bounded and checked; None when it sent none."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    found = _IDEMPOTENCY_KEY.fullmatch(raw)
    if found is None or raw.startswith('"') != raw.endswith('"'):
        raise IdempotencyKeyInvalidError()
    return found.group(1)


def _activation_answer(result: ActivationResult) -> tuple[int, dict]:
    """What an activation answers: 201 the account and its delivery, or 202 queued."""
    if result.request is not None:
        url = reverse("demo-request", args=[result.request.public_id])
        out = {"request_id": result.request.public_id, "status_url": url}
        return status.HTTP_202_ACCEPTED, QueuedSerializer(out).data
    press_pass = result.press_pass
    assert press_pass is not None and result.delivery is not None  # not queued: both
    out = {
        "account": _account(press_pass.account, press_pass),
        "delivery": _handed(result.delivery),
    }
    return status.HTTP_201_CREATED, ActivatedSerializer(out).data


class ActivateView(APIView):
    permission_classes = [area_permission("demo.activate")]

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=ActivateInputSerializer,
        responses={
            201: ActivatedSerializer,
            202: QueuedSerializer,
            400: OpenApiResponse(
                DemoErrorSerializer, description="Bad input, or `idempotency_key_invalid`."
            ),
            409: OpenApiResponse(
                DemoErrorSerializer,
                description="An active or queued press pass (`press_pass_active`, "
                "`activation_queued`), or `idempotency_key_busy`.",
            ),
            422: OpenApiResponse(
                DemoErrorSerializer,
                description="`idempotency_key_reused`: the key was first used for another "
                "body or by another caller.",
            ),
        },
        description="Hand a pool account to the user at once (201), or queue the activation "
        "(202) when the pool is empty or the demo server failed the password change; a queued "
        "activation completes, and is delivered, as soon as an account can be handed over. "
        "With an `Idempotency-Key`, a retry whose answer was lost gets the same answer again.",
    )
    def post(self, request):
        key = idempotency_key(request)
        data = ActivateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if key is None:
            result = services.press_pass_activate(**data.validated_data, actor=request.user)
            code, body = _activation_answer(result)
            return Response(body, status=code)
        answer = services.press_pass_activate_once(
            idempotency_key=key,
            render=_activation_answer,
            **data.validated_data,
            actor=request.user,
        )
        response = Response(answer.body, status=answer.status_code)
        if answer.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class ActivationRequestView(APIView):
    permission_classes = [area_permission("demo.activate")]

    @extend_schema(responses={200: ActivationRequestSerializer, 404: DemoErrorSerializer})
    def get(self, request, request_id):
        found = (
            ActivationRequest.objects.select_related("press_pass__account", "press_pass__delivery")
            .filter(public_id=request_id)
            .first()
        )
        if found is None:
            raise ActivationRequestNotFoundError()
        out = {
            "public_id": found.public_id,
            "status": found.status,
            "created_at": found.created_at,
            "completed_at": found.completed_at,
            "reason": found.reason,
        }
        press_pass = found.press_pass
        if press_pass is not None:
            out["account"] = _account(press_pass.account, press_pass)
            delivery = press_pass.delivery
            if delivery is not None:
                link = found.delivery_link if delivery.status in LIVE_DELIVERY else None
                out["delivery"] = (
                    _handed(delivery_result(delivery=delivery, link=link))
                    if link
                    else _delivery(delivery)
                )
        return Response(ActivationRequestSerializer(out).data)


class AccountHealthView(APIView):
    permission_classes = [area_permission("demo.health")]

    @extend_schema(
        responses={200: AccountHealthSerializer, 404: DemoErrorSerializer},
        description=(
            "A live check of the user's press-pass account, logged, with recent checks. When "
            "the demo server does not answer, the fields are the last check it answered and "
            "`live_check_error` says why this one failed."
        ),
    )
    def get(self, request, user_id):
        press_pass = press_pass_current(user_id=user_id)
        if press_pass is None:
            raise PressPassNotFoundError("This user has no press pass.")
        account = press_pass.account
        report = services.account_health_report(account=account)
        account.refresh_from_db()
        log = report.last_answered
        seconds_left = (press_pass.expires_at - timezone.now()).total_seconds()
        out = {
            "login": account.login,
            "status": account.status,
            "press_pass_status": press_pass.status,
            "connected": bool(log and log.connected),
            "enabled": bool(log and log.enabled),
            "balance": log.balance if log else None,
            "equity": log.equity if log else None,
            "expires_at": press_pass.expires_at,
            "days_left": max(0, math.ceil(seconds_left / 86400)),
            "needs_attention": account.needs_attention,
            "last_check_at": log.checked_at if log else None,
            "live_check_error": report.live_error,
            "recent_checks": account.health_logs.all()[:10],
        }
        return Response(AccountHealthSerializer(out).data)


class PoolStatusView(APIView):
    permission_classes = [area_permission("demo.status")]

    @extend_schema(responses={200: PoolStatusSerializer})
    def get(self, request):
        return Response(PoolStatusSerializer(pool_status()).data)


class ReplenishView(APIView):
    permission_classes = [area_permission("demo.replenish")]

    @extend_schema(
        parameters=[OpenApiParameter("count", int, description="Accounts to provision (10).")],
        request=None,
        responses={202: ReplenishedSerializer},
        description="Queue `count` accounts to provision now, within the max pool size.",
    )
    def post(self, request):
        query = ReplenishQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        queued = services.pool_replenish(count=query.validated_data["count"], actor=request.user)
        return Response(
            ReplenishedSerializer({"queued": queued}).data, status=status.HTTP_202_ACCEPTED
        )


class ResendView(APIView):
    permission_classes = [area_permission("demo.resend")]

    @extend_schema(
        request=ResendInputSerializer,
        responses={
            201: ResentSerializer,
            404: DemoErrorSerializer,
            409: DemoErrorSerializer,
            503: DemoErrorSerializer,
        },
        description=(
            "A new password and a new delivery; earlier links stop working. 409 "
            "`credentials_rotating` while another change of this pass's password outlasts "
            "the wait."
        ),
    )
    def post(self, request):
        data = ResendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.press_pass_resend(**data.validated_data, actor=request.user)
        delivery = result.delivery
        out = {
            **_handed(result),
            "created_at": delivery.created_at,
            "expires_at": delivery.expires_at,
        }
        return Response(ResentSerializer(out).data, status=status.HTTP_201_CREATED)
