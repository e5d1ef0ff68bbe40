from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.permissions import area_permission
from campaigns.filters import CampaignFilter
from campaigns.models import Campaign
from campaigns.services import (
    campaign_create,
    campaign_duplicate,
    campaign_set_status,
    campaign_update,
    mt5_scan,
)
from core.net import client_ip

from .serializers import (
    CampaignInputSerializer,
    CampaignSerializer,
    CampaignStatusSerializer,
    MT5ScanSerializer,
)

ARCHIVED = OpenApiResponse(description="`campaign_archived`: duplicate it instead.")


class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Bonus campaigns: staff read; Super Admin and Campaign Manager write."""

    queryset = Campaign.objects.all()
    serializer_class = CampaignSerializer
    filterset_class = CampaignFilter
    permission_classes = [area_permission("campaigns.read", "campaigns.write")]

    @extend_schema(request=CampaignInputSerializer, responses={201: CampaignSerializer})
    def create(self, request):
        data = CampaignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_create(actor=request.user, ip=client_ip(request), **data.validated_data)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CampaignInputSerializer, responses={200: CampaignSerializer, 409: ARCHIVED}
    )
    def update(self, request, pk=None):
        return self._update(request, partial=False)

    @extend_schema(
        request=CampaignInputSerializer, responses={200: CampaignSerializer, 409: ARCHIVED}
    )
    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool) -> Response:
        campaign = self.get_object()
        data = CampaignInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        campaign = campaign_update(
            campaign=campaign, actor=request.user, ip=client_ip(request), **data.validated_data
        )
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(
        request=CampaignStatusSerializer,
        responses={
            200: CampaignSerializer,
            409: OpenApiResponse(
                description="`invalid_transition`: not a move the lifecycle allows from the "
                "current status; `campaign_ended`, `campaign_incomplete`: cannot be active."
            ),
        },
    )
    @action(detail=True, methods=["patch"], url_path="status")
    def set_status(self, request, pk=None):
        data = CampaignStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_set_status(
            campaign=self.get_object(),
            status=data.validated_data["status"],
            reason=data.validated_data.get("reason", ""),
            actor=request.user,
            ip=client_ip(request),
        )
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(request=None, responses={201: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def duplicate(self, request, pk=None):
        copy = campaign_duplicate(
            campaign=self.get_object(), actor=request.user, ip=client_ip(request)
        )
        return Response(CampaignSerializer(copy).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=MT5ScanSerializer)
    @action(detail=False, methods=["post"], url_path="scan-mt5", filterset_class=None)
    def scan_mt5(self, request):
        scan = mt5_scan(actor=request.user, ip=client_ip(request))
        return Response(MT5ScanSerializer(scan).data)
