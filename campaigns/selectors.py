"""Reads of the campaigns app that are more than one queryset: liveness, promo codes, the scan."""

from datetime import datetime

from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Lower
from django.utils import timezone

from .models import Campaign, MT5Scan


def campaign_is_live(campaign: Campaign, at: datetime | None = None) -> bool:
    """Whether the campaign grants at `at` (default now): active, started, not past ends_at.

    A campaign past its ends_at counts as ended here even before the sweep marks it so.
    """
    at = at or timezone.now()
    return (
        campaign.status == Campaign.Status.ACTIVE
        and (campaign.starts_at is None or campaign.starts_at <= at)
        and (campaign.ends_at is None or at < campaign.ends_at)
    )


def campaigns_live(*, at: datetime | None = None) -> QuerySet[Campaign]:
    """The campaigns for which `campaign_is_live` holds at `at` (default now)."""
    at = at or timezone.now()
    return Campaign.objects.filter(
        Q(starts_at__isnull=True) | Q(starts_at__lte=at),
        Q(ends_at__isnull=True) | Q(ends_at__gt=at),
        status=Campaign.Status.ACTIVE,
    )


def campaign_by_promo_code(code: str) -> Campaign | None:
    """The non-archived campaign holding `code`, matched case-insensitively (at most one)."""
    code = (code or "").strip()
    if not code:
        return None
    return (
        Campaign.objects.exclude(status=Campaign.Status.ARCHIVED)
        .alias(code_lower=Lower("promo_code"))
        .filter(code_lower=Lower(Value(code)))
        .first()
    )


def mt5_last_scan() -> MT5Scan | None:
    """The last "Scan MT5" result, or None before the first scan."""
    return MT5Scan.objects.order_by("-scanned_at").first()


def mt5_choices() -> tuple[list[str], list[str]]:
    """(groups, countries) from the last scan; two empty lists before the first scan."""
    scan = mt5_last_scan()
    if scan is None:
        return [], []
    return list(scan.groups), list(scan.countries)
