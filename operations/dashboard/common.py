"""What the dashboard's tiles share: the tile itself, links to filtered changelists, UTC
days, one GROUP BY per chart, number formats, and the reads two tiles share."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import monitor_status


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Tile:
    """One figure on the dashboard: what it is, the list behind it, maybe a chart.

    `state` colours the tile: "" (plain), "warn" or "alert". `figures` holds the raw numbers the
    text was made from (for tests and anyone reading the tile in code).
    """

    key: str
    title: str
    value: str
    url: str
    detail: str = ""
    links: tuple[Link, ...] = ()
    chart: str = ""
    state: str = ""
    wide: bool = False
    figures: dict[str, Any] = field(default_factory=dict)


def changelist_url(model: str, **params: Any) -> str:
    """`/admin/<app>/<model>/?<params>`: datetimes as ISO 8601 (with their offset), lists and
    tuples joined with commas (the admin splits `__in` values on commas)."""
    app_label, model_name = model.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    if not params:
        return url
    query = {}
    for name, value in params.items():
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        query[name] = value
    return f"{url}?{urlencode(query)}"


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of the day `moment` falls on."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def days_from(start: datetime, n: int) -> list[date]:
    return [(start + timedelta(days=i)).date() for i in range(n)]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def daily_counts(queryset: QuerySet, field_name: str, *, start: datetime) -> dict[date, int]:
    """Rows per UTC day of `field_name` from `start` on, in one GROUP BY."""
    rows = (
        queryset.filter(**{f"{field_name}__gte": start})
        .annotate(day=TruncDate(field_name, tzinfo=UTC))
        .order_by()
        .values("day")
        .annotate(n=Count("pk"))
    )
    return {row["day"]: row["n"] for row in rows}


def count(n: int, noun: str, plural: str = "") -> str:
    """ "1 trade", "2,500 trades"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def money(amount: Decimal | None) -> str:
    return f"{(amount or Decimal(0)).quantize(Decimal('0.01')):,}"


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def day_label(day: date) -> str:
    return day.strftime("%m-%d")


class Reads:
    """The moment the dashboard is drawn and the reads two tiles share (made once)."""

    def __init__(self, now: datetime | None = None):
        self.now = (now or timezone.now()).astimezone(UTC)
        self.today = day_start(self.now)

    def since(self, days: int) -> datetime:
        """Midnight UTC `days - 1` days ago: a window of `days` whole days ending today."""
        return self.today - timedelta(days=days - 1)

    @property
    def week_start(self) -> datetime:
        return self.today - timedelta(days=self.today.weekday())

    @cached_property
    def monitor(self) -> dict[str, Any]:
        return monitor_status()
