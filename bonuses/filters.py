"""Query filters of the bonus API: the bonus list, the approvals and the audit trail."""

import django_filters
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from accounts.models import AuditEvent
from bonuses.models import Bonus, BonusApproval
from campaigns.models import Campaign
from core.filters import IdFilter, UTCDateTimeFilter

BONUS_OBJECT_TYPE = Bonus._meta.label_lower  # "bonuses.bonus", as audit_record(obj=bonus) writes
CAMPAIGN_OBJECT_TYPE = Campaign._meta.label_lower


class BonusApprovalFilter(django_filters.FilterSet):
    """`?status, campaign, login`."""

    status = django_filters.ChoiceFilter(choices=BonusApproval.Status.choices)
    campaign = IdFilter(field_name="campaign_id")
    login = IdFilter(field_name="login")

    class Meta:
        model = BonusApproval
        fields = ["status", "campaign", "login"]


class BonusFilter(django_filters.FilterSet):
    """`?status, campaign, login, bonus_type, trigger`, and `since, until` on `created_at`."""

    status = django_filters.ChoiceFilter(choices=Bonus.Status.choices)
    campaign = IdFilter(field_name="campaign_id")
    login = IdFilter(field_name="login")
    bonus_type = django_filters.ChoiceFilter(choices=Campaign.BonusType.choices)
    trigger = django_filters.ChoiceFilter(choices=Bonus.Trigger.choices)
    since = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Bonus
        fields = ["status", "campaign", "login", "bonus_type", "trigger", "since", "until"]


class AuditEventFilter(django_filters.FilterSet):
    """`?login, bonus, campaign, action, actor, since, until` over the bonus domain's trail.

    `campaign` finds the campaign's own events and those of its bonuses; `actor` is a user id,
    an email, or "system".
    """

    login = IdFilter(field_name="mt5_login")
    bonus = IdFilter(method="filter_bonus")
    campaign = IdFilter(method="filter_campaign")
    action = django_filters.CharFilter(field_name="action")
    actor = django_filters.CharFilter(method="filter_actor")
    since = UTCDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UTCDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["login", "bonus", "campaign", "action", "actor", "since", "until"]

    def filter_bonus(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(object_type=BONUS_OBJECT_TYPE, object_id=str(int(value)))

    def filter_campaign(self, queryset: QuerySet, name: str, value) -> QuerySet:
        campaign_id = int(value)
        # object_id is text: compare with the bonus ids as text, inside the one query.
        bonus_ids = (
            Bonus.objects.filter(campaign_id=campaign_id)
            .annotate(id_text=Cast("pk", output_field=CharField()))
            .values("id_text")
        )
        return queryset.filter(
            Q(object_type=CAMPAIGN_OBJECT_TYPE, object_id=str(campaign_id))
            | Q(object_type=BONUS_OBJECT_TYPE, object_id__in=bonus_ids)
        )

    def filter_actor(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.isdigit():
            return queryset.filter(actor_id=int(value))
        return queryset.filter(actor_label__iexact=value)
