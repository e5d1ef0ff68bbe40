from django.http import Http404
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import area_permission
from core.errors import NotFoundError
from core.net import client_ip
from delivery.filters import DeliveryFilter
from delivery.ratelimit import rate_limit_hit
from delivery.selectors import delivery_list
from delivery.services import delivery_reveal

from .serializers import (
    DeliveryDetailSerializer,
    DeliveryErrorSerializer,
    DeliverySerializer,
    RevealInputSerializer,
    RevealOutputSerializer,
)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Staff (every role): deliveries and their attempt logs, never secrets."""

    queryset = delivery_list()
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    permission_classes = [area_permission("delivery.read")]
    lookup_value_regex = r"\d+"

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            return queryset.prefetch_related(None)  # the list shows no attempts
        return queryset

    def get_object(self):
        try:
            return super().get_object()
        except Http404 as exc:
            raise NotFoundError("No delivery with this id.", code="delivery_not_found") from exc


@method_decorator(sensitive_post_parameters("token"), name="dispatch")
class DeliveryRevealView(APIView):
    """A program's Reveal button: the payload, once. No authentication: the token is the key."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=RevealInputSerializer,
        responses={
            200: RevealOutputSerializer,
            404: OpenApiResponse(
                DeliveryErrorSerializer, description="Unknown token (`link_not_found`)."
            ),
            410: OpenApiResponse(
                DeliveryErrorSerializer,
                description="Already revealed (`link_used`), expired (`link_expired`), "
                "superseded by a resend (`link_superseded`) or never delivered (`link_failed`).",
            ),
            429: OpenApiResponse(
                DeliveryErrorSerializer, description="Rate limited, with Retry-After."
            ),
        },
        auth=[],
    )
    @method_decorator(sensitive_variables())
    def post(self, request):
        ip = client_ip(request)
        rate_limit_hit(scope="reveal", ip=ip)
        data = RevealInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        revealed = delivery_reveal(
            token=data.validated_data["token"],
            ip=ip,
            user_agent=request.headers.get("User-Agent", ""),
        )
        response = Response(RevealOutputSerializer(revealed).data)
        add_never_cache_headers(response)
        response["Referrer-Policy"] = "no-referrer"
        return response
