import django_filters

from core.filters import UTCDateTimeFilter
from delivery.models import Delivery


class DeliveryFilter(django_filters.FilterSet):
    purpose = django_filters.CharFilter()
    since = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Delivery
        fields = ["status", "method", "purpose", "owner"]
