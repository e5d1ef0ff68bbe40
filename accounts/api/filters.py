"""Query filters of the monitoring API, and the time filter every API's lists share."""

from datetime import UTC

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.constants import EMPTY_VALUES
from django_filters.fields import IsoDateTimeField

from accounts.models import MonitoredAccount
from core.money import StrictIntegerFormField

MAX_BIGINT = 2**63 - 1


class LoginFilter(django_filters.NumberFilter):
    """An MT5 login: "1.5", "-1" or a 30-digit number is a 400, not a 500."""

    field_class = StrictIntegerFormField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_BIGINT)
        super().__init__(*args, **kwargs)


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, turned to UTC. Python takes offsets up to 23:59 that PostgreSQL
    refuses (past 15:59), and a time near year 1 or 9999 may not exist in UTC: both are a
    400, not a 500."""

    default_error_messages = {"overflow": "This time is out of range once in UTC."}

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError(self.error_messages["overflow"], code="overflow") from exc


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """`?since=`, `?until=`: an ISO 8601 time with any offset, compared in UTC."""

    field_class = UTCIsoDateTimeField


class LoginTieBreakOrdering(django_filters.OrderingFilter):
    """`?ordering=`; rows that tie (same balance, say) stay in login order across pages."""

    def filter(self, qs: QuerySet, value) -> QuerySet:
        if value in EMPTY_VALUES:
            return qs
        return qs.order_by(*(self.get_ordering_value(param) for param in value), "login")


class MonitoredAccountFilter(django_filters.FilterSet):
    """`?status, login, has_errors, ordering` (e.g. `-consecutive_errors`, `balance`)."""

    status = django_filters.ChoiceFilter(choices=MonitoredAccount.Status.choices)
    login = LoginFilter(field_name="login")
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
