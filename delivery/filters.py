import django_filters

from delivery.models import Delivery


class DeliveryFilter(django_filters.FilterSet):
    purpose = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Delivery
        fields = ["status", "method", "purpose", "owner"]
