"""Query filters of the trading API."""

import django_filters

from accounts.api.filters import UTCDateTimeFilter
from core.money import StrictIntegerFormField

from ..models import Trade
from .serializers import MAX_BIGINT


class IdFilter(django_filters.NumberFilter):
    """A positive id: "1.5", "-1" or a 30-digit number is a 400, not a 500."""

    field_class = StrictIntegerFormField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_BIGINT)
        super().__init__(*args, **kwargs)


class TradeFilter(django_filters.FilterSet):
    """`?session, result, since, until` (on `created_at`: since inclusive, until exclusive)."""

    session = IdFilter(field_name="session_id", label="Session id")
    result = django_filters.ChoiceFilter(choices=Trade.Result.choices)
    since = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Trade
        fields = ["session", "result", "since", "until"]
