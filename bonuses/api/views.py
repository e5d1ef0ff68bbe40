from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.permissions import area_permission
from bonuses import services
from bonuses.filters import AuditEventFilter, BonusApprovalFilter, BonusFilter
from bonuses.models import Bonus, BonusApproval
from bonuses.reports import REPORTS, ReportFilters, report_rows
from bonuses.resources import FORMATS, report_export
from bonuses.selectors import (
    account_lookup,
    audit_campaign_ids,
    audit_trail,
    bonus_list,
    mt5_metadata,
)
from core.errors import ApplicationError, NotFoundError

from .serializers import (
    AccountLookupSerializer,
    ApprovalPendingSerializer,
    AssignInputSerializer,
    AuditEventSerializer,
    BonusApprovalSerializer,
    BonusDetailSerializer,
    BonusListOutputSerializer,
    BonusSerializer,
    CancelInputSerializer,
    CancellationRowSerializer,
    ConversionRowSerializer,
    DecisionInputSerializer,
    DepositTriggerInputSerializer,
    EligibilityInputSerializer,
    EligibilityOutputSerializer,
    ErrorSerializer,
    IneligibleErrorSerializer,
    LeverageRowSerializer,
    MT5MetadataSerializer,
    OverrideLeverageInputSerializer,
    PromoCodeTriggerInputSerializer,
    RegistrationTriggerInputSerializer,
    ReportQuerySerializer,
    SummaryRowSerializer,
)

ERROR_404 = OpenApiResponse(ErrorSerializer, description="Not found.")
ERROR_409 = OpenApiResponse(ErrorSerializer, description="The bonus's state or type forbids it.")
DEAL_ERRORS = (
    "The deposit is not a real deal on the account: `deal_required` (an amount without its "
    "deal), `deal_not_found`, `deal_not_deposit`, `deposit_mismatch`; or `bonus_amount_zero`."
)


def with_key_reason(request, reason: str = "") -> str:
    """The reason to audit: an integration key's call says which key made it."""
    api_key = getattr(request, "auth", None)
    if not isinstance(api_key, ApiKey):
        return reason
    via = f"via API key {api_key.prefix}"
    return f"{reason} ({via})" if reason else via


class BonusViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The bonus monitor, eligibility and manual assign, and a Super Admin's interventions."""

    queryset = bonus_list()
    serializer_class = BonusSerializer
    filterset_class = BonusFilter
    permission_by_action = {
        "list": area_permission("bonuses.read"),
        "retrieve": area_permission("bonuses.read"),
        "check_eligibility": area_permission("bonuses.assign"),
        "assign": area_permission("bonuses.assign"),
        "cancel": area_permission("bonuses.manage"),
        "force_convert": area_permission("bonuses.manage"),
        "override_leverage": area_permission("bonuses.manage"),
    }

    def get_permissions(self):
        # An action not in the table (OPTIONS, say) gets the strictest area.
        return [self.permission_by_action.get(self.action, area_permission("bonuses.manage"))()]

    def get_object(self) -> Bonus:
        try:
            return super().get_object()
        except Http404 as exc:
            raise NotFoundError("No bonus with this id.", code="bonus_not_found") from exc

    def get_serializer_class(self):
        return BonusDetailSerializer if self.action == "retrieve" else BonusSerializer

    @extend_schema(
        request=EligibilityInputSerializer,
        responses={200: EligibilityOutputSerializer},
        description="Every eligibility failure, each with its code and whether it can be "
        "overridden; assigns nothing.",
    )
    @action(detail=False, methods=["post"], url_path="check-eligibility")
    def check_eligibility(self, request):
        data = EligibilityInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        failures = services.check_eligibility_all(**data.validated_data)
        out = {"eligible": not failures, "failures": failures}
        return Response(EligibilityOutputSerializer(out).data)

    @extend_schema(
        request=AssignInputSerializer,
        responses={
            201: BonusSerializer,
            202: OpenApiResponse(
                ApprovalPendingSerializer,
                description="Above the caller's limit: nothing granted yet; a different Super "
                "Admin approves (`bonus-approvals/{id}/approve/`).",
            ),
            400: OpenApiResponse(ErrorSerializer, description=DEAL_ERRORS),
            409: OpenApiResponse(
                IneligibleErrorSerializer,
                description="Ineligible (code `ineligible`), with every failure; with "
                "`override_eligibility` only the non-overridable ones refuse. Or "
                "`deal_already_used`: the deal gave this campaign's bonus already.",
            ),
        },
        description="A manual grant, bounded: a deposit is a real MT5 balance deal (`deal_id`) "
        "and credit above the caller's role limit waits for a second person.",
    )
    @action(detail=False, methods=["post"])
    def assign(self, request):
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        outcome = services.bonus_assign(
            login=fields["login"],
            campaign=fields["campaign"],
            deposit_amount=fields["deposit_amount"],
            deal_id=fields["deal_id"],
            override_eligibility=fields["override_eligibility"],
            reason=with_key_reason(request, fields["reason"]),
            actor=request.user,
        )
        if isinstance(outcome, BonusApproval):
            pending = {
                "approval_id": outcome.pk,
                "status": outcome.status,
                "amount": outcome.amount,
                "limit_reason": outcome.limit_reason,
            }
            return Response(
                ApprovalPendingSerializer(pending).data, status=status.HTTP_202_ACCEPTED
            )
        return Response(BonusSerializer(outcome).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CancelInputSerializer,
        responses={200: BonusSerializer, 404: ERROR_404, 409: ERROR_409},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        bonus = self.get_object()
        data = CancelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bonus = services.bonus_cancel(
            bonus=bonus,
            reason=with_key_reason(request, data.validated_data["reason"]),
            actor=request.user,
        )
        return Response(BonusSerializer(bonus).data)

    @extend_schema(
        request=None,
        responses={200: BonusSerializer, 404: ERROR_404, 409: ERROR_409},
        description="Type C only (else 409 `not_type_c`): the remaining credit becomes balance.",
    )
    @action(detail=True, methods=["post"], url_path="force-convert")
    def force_convert(self, request, pk=None):
        bonus = services.bonus_force_convert(bonus=self.get_object(), actor=request.user)
        return Response(BonusSerializer(bonus).data)

    @extend_schema(
        request=OverrideLeverageInputSerializer,
        responses={200: BonusSerializer, 404: ERROR_404, 409: ERROR_409},
        description="Type A only (else 409 `not_type_a`).",
    )
    @action(detail=True, methods=["post"], url_path="override-leverage")
    def override_leverage(self, request, pk=None):
        bonus = self.get_object()
        data = OverrideLeverageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bonus = services.bonus_override_leverage(
            bonus=bonus, leverage=data.validated_data["leverage"], actor=request.user
        )
        return Response(BonusSerializer(bonus).data)


class BonusApprovalViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Manual assigns above their requester's limit; a different Super Admin decides."""

    queryset = BonusApproval.objects.select_related("requested_by", "decided_by", "bonus__campaign")
    serializer_class = BonusApprovalSerializer
    filterset_class = BonusApprovalFilter
    permission_by_action = {
        "list": area_permission("bonuses.read"),
        "retrieve": area_permission("bonuses.read"),
        "approve": area_permission("bonuses.approve"),
        "reject": area_permission("bonuses.approve"),
    }

    def get_permissions(self):
        return [self.permission_by_action.get(self.action, area_permission("bonuses.approve"))()]

    def get_object(self) -> BonusApproval:
        try:
            return super().get_object()
        except Http404 as exc:
            raise NotFoundError("No approval with this id.", code="approval_not_found") from exc

    @extend_schema(
        request=DecisionInputSerializer,
        responses={
            200: BonusApprovalSerializer,
            400: OpenApiResponse(ErrorSerializer, description=DEAL_ERRORS),
            403: OpenApiResponse(
                ErrorSerializer, description="Not a Super Admin, or the requester (`same_person`)."
            ),
            404: ERROR_404,
            409: OpenApiResponse(
                IneligibleErrorSerializer,
                description="Decided already (`already_decided`), or the grant re-run now "
                "refuses (`ineligible`, `deal_already_used`): the approval is then `failed`.",
            ),
        },
        description="Grants the bonus, re-checking eligibility and the deal now.",
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        approval = self.get_object()
        data = DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = services.bonus_approval_approve(
            approval=approval,
            actor=request.user,
            reason=with_key_reason(request, data.validated_data["reason"]),
        )
        return Response(BonusApprovalSerializer(approval).data)

    @extend_schema(
        request=DecisionInputSerializer,
        responses={
            200: BonusApprovalSerializer,
            403: OpenApiResponse(
                ErrorSerializer, description="Not a Super Admin, or the requester (`same_person`)."
            ),
            404: ERROR_404,
            409: OpenApiResponse(ErrorSerializer, description="`already_decided`."),
        },
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        approval = self.get_object()
        data = DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = services.bonus_approval_reject(
            approval=approval,
            actor=request.user,
            reason=with_key_reason(request, data.validated_data["reason"]),
        )
        return Response(BonusApprovalSerializer(approval).data)


class TriggerViewSet(viewsets.GenericViewSet):
    """What integrations (and Super Admins) send when something happens to an account."""

    permission_classes = [area_permission("triggers")]
    serializer_class = BonusSerializer

    @extend_schema(
        request=DepositTriggerInputSerializer,
        responses={
            200: BonusListOutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description=DEAL_ERRORS),
            404: OpenApiResponse(ErrorSerializer, description="`account_not_found` on MT5."),
        },
        description="Grants every matching campaign's bonus; the same `deal_id` twice grants "
        "once. The deposit must be a real balance deal on the account: `deal_id` is checked "
        "on MT5; without it the amount is matched to a recent deposit of that amount.",
    )
    @action(detail=False, methods=["post"])
    def deposit(self, request):
        data = DepositTriggerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bonuses = services.trigger_deposit(**data.validated_data, actor=request.user, source="api")
        return Response({"bonuses": BonusSerializer(bonuses, many=True).data})

    @extend_schema(
        request=RegistrationTriggerInputSerializer,
        responses={
            200: BonusListOutputSerializer,
            404: OpenApiResponse(ErrorSerializer, description="`account_not_found` on MT5."),
        },
    )
    @action(detail=False, methods=["post"])
    def registration(self, request):
        data = RegistrationTriggerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bonuses = services.trigger_registration(**data.validated_data, actor=request.user)
        return Response({"bonuses": BonusSerializer(bonuses, many=True).data})

    @extend_schema(
        request=PromoCodeTriggerInputSerializer,
        responses={
            201: BonusSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Unknown or inactive code (`invalid_promo_code`), or " + DEAL_ERRORS,
            ),
            409: OpenApiResponse(
                IneligibleErrorSerializer, description="Ineligible, or `deal_already_used`."
            ),
        },
    )
    @action(detail=False, methods=["post"], url_path="promo-code")
    def promo_code(self, request):
        data = PromoCodeTriggerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bonus = services.trigger_promo_code(**data.validated_data, actor=request.user)
        return Response(BonusSerializer(bonus).data, status=status.HTTP_201_CREATED)


class _NoFormatOverride:
    URL_FORMAT_OVERRIDE = None


class FileFormatNegotiation(DefaultContentNegotiation):
    """`?format=` of the reports names a file format (csv, xlsx), not a DRF renderer."""

    # Only URL_FORMAT_OVERRIDE is read from it: a stand-in for the whole api_settings.
    settings = _NoFormatOverride()  # type: ignore[assignment]


REPORT_PARAMETERS = [
    OpenApiParameter("campaign", int, description="Only this campaign."),
    OpenApiParameter("login", int, description="Only this MT5 login."),
    OpenApiParameter(
        "since", OpenApiTypes.DATETIME, description="From (inclusive; for cancellations: ended)."
    ),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Before (exclusive)."),
]


class ReportViewSet(viewsets.GenericViewSet):
    """Summary, Type C conversions, cancellations by reason, Type A leverage; and their files."""

    permission_classes = [area_permission("reports.read")]
    content_negotiation_class = FileFormatNegotiation
    serializer_class = SummaryRowSerializer
    filter_backends = []

    def _filters(self, request) -> ReportFilters:
        query = ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        fields = query.validated_data
        return ReportFilters(
            campaign_id=fields.get("campaign"),
            login=fields.get("login"),
            since=fields.get("since"),
            until=fields.get("until"),
        )

    def _report(self, request, report: str, serializer_class):
        rows = report_rows(report=report, filters=self._filters(request))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    @extend_schema(
        parameters=REPORT_PARAMETERS,
        responses=SummaryRowSerializer(many=True),
        description="Per campaign: bonuses by status and the money they moved (bonuses created "
        "in the window). total_removed = credit taken back without converting it.",
    )
    @action(detail=False)
    def summary(self, request):
        return self._report(request, "summary", SummaryRowSerializer)

    @extend_schema(
        parameters=REPORT_PARAMETERS,
        responses=ConversionRowSerializer(many=True),
        description="Type C bonuses and how far each has converted, newest first.",
    )
    @action(detail=False)
    def conversions(self, request):
        return self._report(request, "conversions", ConversionRowSerializer)

    @extend_schema(
        parameters=REPORT_PARAMETERS,
        responses=CancellationRowSerializer(many=True),
        description="Cancelled and expired bonuses by reason (an expiry without one reads "
        '"expired"), with the credit they lost; the window is on when they ended.',
    )
    @action(detail=False)
    def cancellations(self, request):
        return self._report(request, "cancellations", CancellationRowSerializer)

    @extend_schema(
        parameters=REPORT_PARAMETERS,
        responses=LeverageRowSerializer(many=True),
        description="Type A bonuses: the leverage before, the leverage set, when it was restored.",
    )
    @action(detail=False)
    def leverage(self, request):
        return self._report(request, "leverage", LeverageRowSerializer)

    @extend_schema(
        description="One report as a file (CSV: money as text with two decimals; XLSX: "
        "numbers), with the same filters as the report.",
        parameters=[
            OpenApiParameter("report", str, enum=REPORTS, required=True),
            OpenApiParameter("format", str, enum=sorted(FORMATS), required=True),
            *REPORT_PARAMETERS,
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (
                200,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ): OpenApiTypes.BINARY,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Unknown report or format (`invalid_report`, "
                "`invalid_format`), or a bad filter.",
            ),
        },
    )
    @action(detail=False)
    def export(self, request):
        report = request.query_params.get("report", "")
        file_format = request.query_params.get("format", "")
        if report not in REPORTS:
            raise ApplicationError(
                f"report must be one of {', '.join(REPORTS)}.", code="invalid_report"
            )
        if file_format not in FORMATS:
            raise ApplicationError(
                f"format must be one of {', '.join(sorted(FORMATS))}.", code="invalid_format"
            )
        exported = report_export(
            report=report, file_format=file_format, filters=self._filters(request)
        )
        response = HttpResponse(exported.content, content_type=exported.content_type)
        response["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
        return response


class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The bonus domain's audit trail, newest first."""

    permission_classes = [area_permission("audit.read")]
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter

    def get_queryset(self):
        return audit_trail().order_by("-at", "-id")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {**self.get_serializer_context(), "campaign_of_bonus": audit_campaign_ids(page)}
        return self.get_paginated_response(
            AuditEventSerializer(page, many=True, context=context).data
        )


class MT5MetadataView(APIView):
    """Groups, countries and accounts of the MT5 server, for forms."""

    permission_classes = [area_permission("mt5.read")]

    @extend_schema(responses=MT5MetadataSerializer)
    def get(self, request):
        return Response(MT5MetadataSerializer(mt5_metadata()).data)


class MT5AccountView(APIView):
    """One MT5 account: live state, monitoring, bonus history and audit trail."""

    permission_classes = [area_permission("mt5.read")]

    @extend_schema(
        responses={
            200: AccountLookupSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Not a login (`invalid_login`)."),
            404: OpenApiResponse(ErrorSerializer, description="`account_not_found`."),
        }
    )
    def get(self, request, login: str):
        if not login.isdigit() or not 0 < int(login) < 2**63:
            raise ApplicationError("An MT5 login is a positive integer.", code="invalid_login")
        lookup = account_lookup(login=int(login))
        # The account's bonuses are all here: their campaigns need no second query.
        context = {"campaign_of_bonus": {b.pk: b.campaign_id for b in lookup.bonuses}}
        return Response(AccountLookupSerializer(lookup, context=context).data)
