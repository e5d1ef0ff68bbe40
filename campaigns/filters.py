import django_filters
from django.db.models import Q, QuerySet

from .models import Campaign


class CampaignFilter(django_filters.FilterSet):
    """`status`, `bonus_type`, `trigger_type` exactly; `search` in name, description, promo code."""

    search = django_filters.CharFilter(
        method="filter_search", label="Name, description or promo code contains"
    )

    class Meta:
        model = Campaign
        fields = ["status", "bonus_type", "trigger_type"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name__icontains=value)
            | Q(description__icontains=value)
            | Q(promo_code__icontains=value)
        )
