from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bonuses.models import Bonus, BonusApproval
from bonuses.reports import REPORTS
from bonuses.resources import FORMATS
from bonuses.selectors import BONUS_OBJECT_TYPE, CAMPAIGN_OBJECT_TYPE, bonus_events
from campaigns.models import Campaign
from core.money import MAX_BIGINT, MoneyField, StrictIntegerField, parse_int

# Bounds of the columns these values land in: anything outside is bad input (400), not a 500.
MAX_POSITIVE_INT = 2**31 - 1
MONEY: dict[str, Any] = {"max_digits": 14, "decimal_places": 2}


def login_field(**kwargs) -> serializers.IntegerField:
    return StrictIntegerField(min_value=1, max_value=MAX_BIGINT, **kwargs)


def amount_field(**kwargs) -> serializers.DecimalField:
    """Money in: up to two decimals, more than zero."""
    return MoneyField(**MONEY, min_value=Decimal("0.01"), **kwargs)


class CampaignIdField(serializers.PrimaryKeyRelatedField):
    """`campaign_id` of a request body: an unknown id is a field error (400)."""

    default_error_messages = {
        "required": "This field is required.",
        "does_not_exist": "No campaign with id {pk_value}.",
        "incorrect_type": "A campaign id is an integer, not {data_type}.",
    }

    def __init__(self, **kwargs):
        super().__init__(queryset=Campaign.objects.all(), source="campaign", **kwargs)

    def to_internal_value(self, data):
        try:  # strictly digits: int() alone takes "1_2" and full-width digits
            parse_int(data)
        except ValueError:
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


# --- Errors (for the schema) ----------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class EligibilityFailureSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    overridable = serializers.BooleanField()


class IneligibleErrorSerializer(ErrorSerializer):
    failures = EligibilityFailureSerializer(many=True)


# --- Bonuses --------------------------------------------------------------------------------


class BonusSerializer(serializers.ModelSerializer):
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    progress_pct = serializers.DecimalField(max_digits=5, decimal_places=2, read_only=True)

    class Meta:
        model = Bonus
        fields = [
            "id",
            "campaign",
            "campaign_name",
            "login",
            "bonus_type",
            "status",
            "trigger",
            "amount",
            "credit_remaining",
            "deposit_amount",
            "deposit_deal_id",
            "original_leverage",
            "adjusted_leverage",
            "leverage_restored_at",
            "lots_required",
            "lots_traded",
            "converted_amount",
            "progress_pct",
            "expires_at",
            "cancel_reason",
            "override_reason",
            "overridden_failures",
            "ended_at",
            "created_at",
        ]
        read_only_fields = fields


class BonusEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_label")
    action = serializers.CharField()
    before = serializers.JSONField()
    after = serializers.JSONField()
    reason = serializers.CharField()


class BonusDetailSerializer(BonusSerializer):
    events = serializers.SerializerMethodField()

    class Meta(BonusSerializer.Meta):
        fields = [*BonusSerializer.Meta.fields, "events"]
        read_only_fields = fields

    @extend_schema_field(BonusEventSerializer(many=True))
    def get_events(self, bonus: Bonus) -> list:
        # many=True makes a ListSerializer, whose data is a list (the stubs say a dict).
        return BonusEventSerializer(bonus_events(bonus=bonus), many=True).data  # type: ignore[return-value]


class BonusListOutputSerializer(serializers.Serializer):
    bonuses = BonusSerializer(many=True)


def deal_id_field(**kwargs) -> serializers.IntegerField:
    """An MT5 deal ticket (a deposit's), looked up on the server."""
    return StrictIntegerField(
        min_value=1, max_value=MAX_BIGINT, required=False, allow_null=True, default=None, **kwargs
    )


class EligibilityInputSerializer(serializers.Serializer):
    login = login_field()
    campaign_id = CampaignIdField()
    deposit_amount = amount_field(required=False, allow_null=True, default=None)
    deal_id = deal_id_field(
        help_text="The deposit's MT5 deal, if any: the bonuses it already gave other campaigns "
        "decide `stacking_exclusive`."
    )


class EligibilityOutputSerializer(serializers.Serializer):
    eligible = serializers.BooleanField()
    failures = EligibilityFailureSerializer(many=True)


class AssignInputSerializer(EligibilityInputSerializer):
    deal_id = deal_id_field(
        help_text="The deposit's MT5 deal: required with deposit_amount; the bonus is a "
        "percentage of that deal's amount."
    )
    override_eligibility = serializers.BooleanField(default=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ApprovalPendingSerializer(serializers.Serializer):
    """202 of an assign above the caller's limit."""

    approval_id = serializers.IntegerField()
    status = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)
    limit_reason = serializers.CharField()


class BonusApprovalSerializer(serializers.ModelSerializer):
    campaign_id = serializers.IntegerField(read_only=True)
    requested_by = serializers.CharField(source="requested_by.email", read_only=True)
    decided_by = serializers.CharField(
        source="decided_by.email", read_only=True, default=None, allow_null=True
    )
    bonus = BonusSerializer(read_only=True, allow_null=True)

    class Meta:
        model = BonusApproval
        fields = [
            "id",
            "status",
            "login",
            "campaign_id",
            "amount",
            "deposit_amount",
            "deal_id",
            "override_eligibility",
            "reason",
            "limit_reason",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_reason",
            "failure_code",
            "failure_detail",
            "bonus",
            "created_at",
        ]
        read_only_fields = fields


class DecisionInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class CancelInputSerializer(serializers.Serializer):
    # 160: room for " (via API key <prefix>)" within the bonus's 200-character cancel reason.
    reason = serializers.CharField(max_length=160, required=False, allow_blank=True, default="")


class OverrideLeverageInputSerializer(serializers.Serializer):
    leverage = StrictIntegerField(min_value=1, max_value=MAX_POSITIVE_INT)


# --- Triggers -------------------------------------------------------------------------------


class DepositTriggerInputSerializer(serializers.Serializer):
    login = login_field()
    amount = amount_field()
    deal_id = deal_id_field(
        help_text="The deposit's MT5 deal, checked on the server; without it the amount must "
        "match a recent deposit on the account."
    )


class RegistrationTriggerInputSerializer(serializers.Serializer):
    login = login_field()


class PromoCodeTriggerInputSerializer(serializers.Serializer):
    login = login_field()
    code = serializers.CharField(max_length=64)
    deposit_amount = amount_field(required=False, allow_null=True, default=None)
    deal_id = deal_id_field(help_text="The deposit's MT5 deal, checked on the server.")


# --- Reports --------------------------------------------------------------------------------


class ReportQuerySerializer(serializers.Serializer):
    """`?campaign, login, since, until` (since inclusive, until exclusive)."""

    campaign = StrictIntegerField(min_value=1, max_value=MAX_BIGINT, required=False)
    login = login_field(required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": "until must be after since."})
        return attrs


class ExportQuerySerializer(ReportQuerySerializer):
    report = serializers.ChoiceField(choices=REPORTS)
    format = serializers.ChoiceField(choices=sorted(FORMATS))


def _money_out(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=16, decimal_places=2, **kwargs)


class SummaryRowSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    name = serializers.CharField()
    bonus_type = serializers.CharField()
    campaign_status = serializers.CharField()
    stacking = serializers.CharField()
    priority = serializers.IntegerField()
    granted = serializers.IntegerField()
    active = serializers.IntegerField()
    converted = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    expired = serializers.IntegerField()
    pending = serializers.IntegerField()
    failed = serializers.IntegerField()
    total_credit = _money_out()
    total_converted = _money_out()
    total_removed = _money_out()
    credit_outstanding = _money_out()
    skipped_stacking = serializers.IntegerField(
        help_text="Deposits it qualified for but did not fire on: another campaign took them "
        "and one of the two is exclusive."
    )


class ConversionRowSerializer(serializers.Serializer):
    bonus_id = serializers.IntegerField(source="pk")
    campaign_id = serializers.IntegerField()
    campaign_name = serializers.CharField(source="campaign.name")
    login = serializers.IntegerField()
    status = serializers.CharField()
    amount = _money_out()
    lots_required = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    lots_traded = serializers.DecimalField(max_digits=14, decimal_places=2)
    converted_amount = _money_out()
    credit_remaining = _money_out()
    progress_pct = serializers.DecimalField(max_digits=5, decimal_places=2)
    created_at = serializers.DateTimeField()


class CancellationRowSerializer(serializers.Serializer):
    reason = serializers.CharField()
    count = serializers.IntegerField()
    credit_removed = _money_out()


class LeverageRowSerializer(serializers.Serializer):
    bonus_id = serializers.IntegerField(source="pk")
    campaign_id = serializers.IntegerField()
    campaign_name = serializers.CharField(source="campaign.name")
    login = serializers.IntegerField()
    status = serializers.CharField()
    amount = _money_out()
    original_leverage = serializers.IntegerField(allow_null=True)
    adjusted_leverage = serializers.IntegerField(allow_null=True)
    restored_at = serializers.DateTimeField(source="leverage_restored_at", allow_null=True)
    created_at = serializers.DateTimeField()


# --- Audit ----------------------------------------------------------------------------------


class AuditEventSerializer(serializers.Serializer):
    """An audit event of the bonus domain. Needs `campaign_of_bonus` ({bonus_id: campaign_id})
    in the context to name the campaign of a bonus's events."""

    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_label")
    actor_id = serializers.IntegerField(allow_null=True)
    action = serializers.CharField()
    login = serializers.IntegerField(source="mt5_login", allow_null=True)
    bonus = serializers.SerializerMethodField()
    campaign = serializers.SerializerMethodField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    before = serializers.JSONField()
    after = serializers.JSONField()
    reason = serializers.CharField()

    def get_bonus(self, event) -> int | None:
        if event.object_type == BONUS_OBJECT_TYPE and event.object_id.isdigit():
            return int(event.object_id)
        return None

    def get_campaign(self, event) -> int | None:
        if event.object_type == CAMPAIGN_OBJECT_TYPE and event.object_id.isdigit():
            return int(event.object_id)
        bonus_id = self.get_bonus(event)
        if bonus_id is None:
            return None
        return self.context.get("campaign_of_bonus", {}).get(bonus_id)


# --- MT5 ------------------------------------------------------------------------------------


class MT5AccountBriefSerializer(serializers.Serializer):
    login = serializers.IntegerField()
    name = serializers.CharField()
    group = serializers.CharField()
    country = serializers.CharField()


class MT5MetadataSerializer(serializers.Serializer):
    groups = serializers.ListField(child=serializers.CharField())
    countries = serializers.ListField(child=serializers.CharField())
    accounts = MT5AccountBriefSerializer(many=True)


class MonitoringStateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["active", "paused", "unmonitored"])
    consecutive_errors = serializers.IntegerField()
    last_error = serializers.CharField()
    last_polled_at = serializers.DateTimeField(allow_null=True)


class AccountLookupSerializer(serializers.Serializer):
    """Reads a `bonuses.selectors.AccountLookup`."""

    login = serializers.IntegerField(source="account.login")
    name = serializers.CharField(source="account.name")
    group = serializers.CharField(source="account.group")
    country = serializers.CharField(source="account.country")
    lead_source = serializers.CharField(source="account.lead_source")
    currency = serializers.CharField(source="account.currency")
    enabled = serializers.BooleanField(source="account.enabled")
    balance = _money_out(source="account.balance")
    equity = _money_out(source="account.equity")
    credit = _money_out(source="account.credit")
    leverage = serializers.IntegerField(source="account.leverage")
    monitoring = MonitoringStateSerializer()
    bonuses = BonusSerializer(many=True)
    audit = AuditEventSerializer(many=True)
