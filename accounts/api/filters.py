"""Query filters of the monitoring API."""

import django_filters
from django.db.models import QuerySet
from django_filters.constants import EMPTY_VALUES

from accounts.models import MonitoredAccount
from core.filters import IdFilter


class LoginTieBreakOrdering(django_filters.OrderingFilter):
    """`?ordering=`; rows that tie (same balance, say) stay in login order across pages."""

    def filter(self, qs: QuerySet, value) -> QuerySet:
        if value in EMPTY_VALUES:
            return qs
        return qs.order_by(*(self.get_ordering_value(param) for param in value), "login")


class MonitoredAccountFilter(django_filters.FilterSet):
    """`?status, login, has_errors, ordering` (e.g. `-consecutive_errors`, `balance`)."""

    status = django_filters.ChoiceFilter(choices=MonitoredAccount.Status.choices)
    login = IdFilter(field_name="login")
    has_errors = django_filters.BooleanFilter(
        method="filter_has_errors", label="Has consecutive errors"
    )
    ordering = LoginTieBreakOrdering(
        fields=(
            "login",
            "balance",
            "equity",
            "credit",
            "leverage",
            "status",
            "consecutive_errors",
            "last_polled_at",
            "last_changed_at",
        )
    )

    class Meta:
        model = MonitoredAccount
        fields = ["status", "login", "has_errors"]

    def filter_has_errors(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        if value:
            return queryset.filter(consecutive_errors__gt=0)
        return queryset.filter(consecutive_errors=0)
