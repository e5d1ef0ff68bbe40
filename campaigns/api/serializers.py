from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import Campaign
from campaigns.selectors import campaign_is_live
from campaigns.validation import EDITABLE_FIELDS, LIST_ITEM_MAX_LENGTH, LIST_MAX_ITEMS
from core.money import StrictNumbersMixin


class _Text(serializers.CharField):
    """Text only: a number where a group name or code belongs is a mistake, not a name."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _string_list() -> serializers.ListField:
    return serializers.ListField(
        child=_Text(max_length=LIST_ITEM_MAX_LENGTH),
        max_length=LIST_MAX_ITEMS,
        required=False,
        help_text="Empty means all.",
    )


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign as the API shows it: money as strings with two decimals."""

    agent_codes = serializers.ListField(child=serializers.CharField())
    target_groups = serializers.ListField(child=serializers.CharField())
    target_countries = serializers.ListField(child=serializers.CharField())
    is_live = serializers.SerializerMethodField(
        help_text="Active, started and not past ends_at right now: what eligibility checks."
    )

    class Meta:
        model = Campaign
        fields = (
            "id",
            *EDITABLE_FIELDS[:2],
            "status",
            *EDITABLE_FIELDS[2:],
            "is_live",
            "created_by",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(bool)
    def get_is_live(self, campaign: Campaign) -> bool:
        return campaign_is_live(campaign)


class CampaignInputSerializer(StrictNumbersMixin, serializers.ModelSerializer):
    """What a caller may send to create or edit a campaign (never status).

    Money, the percentage and the counts are plain ASCII numbers (`core.money`): `"1_000"`,
    `"1e2"` or full-width digits are 400.

    Shapes only; the rules across fields (deposit range, Type C, promo codes, dates...) are
    the service's, and come back as 400 with the field named.
    """

    agent_codes = _string_list()
    target_groups = _string_list()
    target_countries = _string_list()

    class Meta:
        model = Campaign
        fields = EDITABLE_FIELDS


class CampaignStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Campaign.Status.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class MT5ScanSerializer(serializers.Serializer):
    groups = serializers.ListField(child=serializers.CharField())
    countries = serializers.ListField(child=serializers.CharField())
    scanned_at = serializers.DateTimeField()
