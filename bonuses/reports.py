"""The four bonus reports, each one query with its aggregates done by the database.

Rows are dicts (summary, cancellations) or bonuses (conversions, leverage); the API
serializers and the export resources (`bonuses.resources`) read the same names.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce

from bonuses.models import Bonus
from bonuses.types import bonus_kinds
from campaigns.models import Campaign, StackingSkip

REPORTS = ("summary", "conversions", "cancellations", "leverage")

# Bonuses whose credit reached the account; pending and failed ones never held any.
GRANTED = (
    Bonus.Status.ACTIVE,
    Bonus.Status.CONVERTED,
    Bonus.Status.CANCELLED,
    Bonus.Status.EXPIRED,
)
ENDED = (Bonus.Status.CANCELLED, Bonus.Status.EXPIRED)

_MONEY = DecimalField(max_digits=16, decimal_places=2)
_ZERO = Value(Decimal("0.00"), output_field=_MONEY)


@dataclass(frozen=True)
class ReportFilters:
    """What every report may be narrowed by; `since` inclusive, `until` exclusive."""

    campaign_id: int | None = None
    login: int | None = None
    since: datetime | None = None
    until: datetime | None = None


NO_FILTERS = ReportFilters()


def _removed(prefix: str = "") -> CombinedExpression:
    """Credit a bonus held and no longer holds without converting it: removed by the system."""
    return F(f"{prefix}amount") - F(f"{prefix}converted_amount") - F(f"{prefix}credit_remaining")


def report_summary(*, filters: ReportFilters = NO_FILTERS) -> QuerySet:
    """Per campaign: bonuses by status and the money they moved (bonuses created in the window).

    `total_removed` is credit taken back (cancel, expiry, withdrawal, drawdown):
    amount - converted - credit still held. `stacking` and `priority` are the campaign's;
    `skipped_stacking` counts the deposits (in the window) it qualified for but did not fire
    on, because another campaign's bonus took them and one of the two is exclusive.
    """
    window = Q()
    if filters.since is not None:
        window &= Q(bonuses__created_at__gte=filters.since)
    if filters.until is not None:
        window &= Q(bonuses__created_at__lt=filters.until)
    if filters.login is not None:
        window &= Q(bonuses__login=filters.login)
    granted = window & Q(bonuses__status__in=GRANTED)

    def count(status: str) -> Count:
        return Count("bonuses", filter=window & Q(bonuses__status=status))

    skips = StackingSkip.objects.filter(campaign=OuterRef("pk"))
    if filters.since is not None:
        skips = skips.filter(created_at__gte=filters.since)
    if filters.until is not None:
        skips = skips.filter(created_at__lt=filters.until)
    if filters.login is not None:
        skips = skips.filter(login=filters.login)
    # A subquery, not a second join: joined with the bonuses it would multiply both counts.
    skipped = skips.order_by().values("campaign").annotate(n=Count("pk")).values("n")

    campaigns = Campaign.objects.all()
    if filters.campaign_id is not None:
        campaigns = campaigns.filter(pk=filters.campaign_id)
    return (
        campaigns.annotate(
            campaign_id=F("pk"),
            campaign_status=F("status"),
            skipped_stacking=Coalesce(Subquery(skipped, output_field=IntegerField()), 0),
            granted=Count("bonuses", filter=granted),
            active=count(Bonus.Status.ACTIVE),
            converted=count(Bonus.Status.CONVERTED),
            cancelled=count(Bonus.Status.CANCELLED),
            expired=count(Bonus.Status.EXPIRED),
            pending=count(Bonus.Status.PENDING),
            failed=count(Bonus.Status.FAILED),
            total_credit=Coalesce(Sum("bonuses__amount", filter=granted), _ZERO),
            total_converted=Coalesce(Sum("bonuses__converted_amount", filter=granted), _ZERO),
            total_removed=Coalesce(
                Sum(_removed("bonuses__"), filter=granted, output_field=_MONEY), _ZERO
            ),
            credit_outstanding=Coalesce(
                Sum(
                    "bonuses__credit_remaining",
                    filter=window & Q(bonuses__status=Bonus.Status.ACTIVE),
                ),
                _ZERO,
            ),
        )
        .order_by("pk")
        .values(
            "campaign_id",
            "name",
            "bonus_type",
            "campaign_status",
            "stacking",
            "priority",
            "granted",
            "active",
            "converted",
            "cancelled",
            "expired",
            "pending",
            "failed",
            "total_credit",
            "total_converted",
            "total_removed",
            "credit_outstanding",
            "skipped_stacking",
        )
    )


def _granted_bonuses(report: str, filters: ReportFilters) -> QuerySet[Bonus]:
    """The granted bonuses of the types whose report this is (`BonusKind.report`)."""
    types = [kind.code for kind in bonus_kinds() if kind.report == report]
    bonuses = Bonus.objects.filter(bonus_type__in=types, status__in=GRANTED)
    if filters.campaign_id is not None:
        bonuses = bonuses.filter(campaign_id=filters.campaign_id)
    if filters.login is not None:
        bonuses = bonuses.filter(login=filters.login)
    if filters.since is not None:
        bonuses = bonuses.filter(created_at__gte=filters.since)
    if filters.until is not None:
        bonuses = bonuses.filter(created_at__lt=filters.until)
    return bonuses.select_related("campaign").order_by("-created_at", "-pk")


def report_conversions(*, filters: ReportFilters = NO_FILTERS) -> QuerySet[Bonus]:
    """Type C bonuses and how far each has converted (granted in the window), newest first."""
    return _granted_bonuses("conversions", filters)


def report_leverage(*, filters: ReportFilters = NO_FILTERS) -> QuerySet[Bonus]:
    """Type A bonuses: the leverage before, the leverage set, and when it was restored."""
    return _granted_bonuses("leverage", filters)


def report_cancellations(*, filters: ReportFilters = NO_FILTERS) -> QuerySet:
    """Cancelled and expired bonuses by reason (an expiry without one reads "expired"),
    with the credit they lost; the window is on when they ended."""
    bonuses = Bonus.objects.filter(status__in=ENDED).annotate(
        ended=Coalesce("ended_at", "updated_at"),
        reason=Case(
            When(~Q(cancel_reason=""), then=F("cancel_reason")),
            default=F("status"),
            output_field=CharField(),
        ),
    )
    if filters.campaign_id is not None:
        bonuses = bonuses.filter(campaign_id=filters.campaign_id)
    if filters.login is not None:
        bonuses = bonuses.filter(login=filters.login)
    if filters.since is not None:
        bonuses = bonuses.filter(ended__gte=filters.since)
    if filters.until is not None:
        bonuses = bonuses.filter(ended__lt=filters.until)
    return (
        bonuses.values("reason")
        .annotate(
            count=Count("pk"),
            credit_removed=Coalesce(Sum(_removed(), output_field=_MONEY), _ZERO),
        )
        .order_by("-count", "reason")
    )


def report_rows(*, report: str, filters: ReportFilters = NO_FILTERS) -> QuerySet:
    """The rows of the report named `report` (one of `REPORTS`)."""
    return {
        "summary": report_summary,
        "conversions": report_conversions,
        "cancellations": report_cancellations,
        "leverage": report_leverage,
    }[report](filters=filters)
