"""Query filters of the trading API."""

import django_filters

from core.filters import IdFilter, UTCDateTimeFilter

from ..models import Trade


class TradeFilter(django_filters.FilterSet):
    """`?session, result, since, until` (on `created_at`: since inclusive, until exclusive)."""

    session = IdFilter(field_name="session_id", label="Session id")
    result = django_filters.ChoiceFilter(choices=Trade.Result.choices)
    since = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Trade
        fields = ["session", "result", "since", "until"]
