"""Query filters every API's lists share: a positive id, and a time compared in UTC."""

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from core.money import MAX_BIGINT, StrictIntegerFormField


class IdFilter(django_filters.NumberFilter):
    """A positive integer (an id or an MT5 login): "1.5", "-1" or a 30-digit number is a 400,
    not a 500."""

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
