"""django-import-export resources of the four reports: one file, CSV or XLSX, per report.

CSV holds money as text with two decimals (as the API does); XLSX holds numbers and naive UTC
times (Excel has no time zones). Text that a spreadsheet would run as a formula is defused.
"""

import re
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

from django.utils import timezone
from import_export import resources
from import_export.fields import Field
from import_export.formats.base_formats import CSV, XLSX
from import_export.widgets import Widget

from bonuses.reports import NO_FILTERS, ReportFilters, report_rows
from core.money import CENT

FORMATS = {"csv": CSV, "xlsx": XLSX}

# OWASP's CSV injection characters; a leading quote makes the cell plain text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Control characters XLSX cannot hold (openpyxl refuses them).
_ILLEGAL_XLSX = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


class MoneyWidget(Widget):
    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        money = Decimal(value).quantize(CENT)
        return money if kwargs.get("force_native_type") else str(money)


class NumberWidget(Widget):
    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        return value if kwargs.get("force_native_type") else str(value)


class TimeWidget(Widget):
    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        value = value.astimezone(UTC)
        if kwargs.get("force_native_type"):
            return value.replace(tzinfo=None)
        return value.isoformat().replace("+00:00", "Z")


class TextWidget(Widget):
    def render(self, value, obj=None, **kwargs):
        text = "" if value is None else str(value)
        if kwargs.get("force_native_type"):
            text = _ILLEGAL_XLSX.sub("", text)
        if text.startswith(_FORMULA_START):
            text = "'" + text
        return text


def _money(name: str, attribute: str | None = None) -> Field:
    return Field(attribute=attribute or name, column_name=name, widget=MoneyWidget())


def _number(name: str, attribute: str | None = None) -> Field:
    return Field(attribute=attribute or name, column_name=name, widget=NumberWidget())


def _text(name: str, attribute: str | None = None) -> Field:
    return Field(attribute=attribute or name, column_name=name, widget=TextWidget())


def _time(name: str, attribute: str | None = None) -> Field:
    return Field(attribute=attribute or name, column_name=name, widget=TimeWidget())


class SummaryResource(resources.Resource):
    """Per campaign: bonuses by status and the money they moved."""

    campaign_id = _number("campaign_id")
    name = _text("name")
    bonus_type = _text("bonus_type")
    campaign_status = _text("campaign_status")
    stacking = _text("stacking")
    priority = _number("priority")
    granted = _number("granted")
    active = _number("active")
    converted = _number("converted")
    cancelled = _number("cancelled")
    expired = _number("expired")
    pending = _number("pending")
    failed = _number("failed")
    total_credit = _money("total_credit")
    total_converted = _money("total_converted")
    total_removed = _money("total_removed")
    credit_outstanding = _money("credit_outstanding")
    skipped_stacking = _number("skipped_stacking")


class ConversionsResource(resources.Resource):
    """Type C progress, one row per bonus."""

    bonus_id = _number("bonus_id", "pk")
    campaign_id = _number("campaign_id")
    campaign_name = _text("campaign_name", "campaign__name")
    login = _number("login")
    status = _text("status")
    amount = _money("amount")
    lots_required = _number("lots_required")
    lots_traded = _number("lots_traded")
    converted_amount = _money("converted_amount")
    credit_remaining = _money("credit_remaining")
    progress_pct = _number("progress_pct")
    created_at = _time("created_at")


class CancellationsResource(resources.Resource):
    """Cancelled and expired bonuses by reason."""

    reason = _text("reason")
    count = _number("count")
    credit_removed = _money("credit_removed")


class LeverageResource(resources.Resource):
    """Type A leverage adjustments, one row per bonus."""

    bonus_id = _number("bonus_id", "pk")
    campaign_id = _number("campaign_id")
    campaign_name = _text("campaign_name", "campaign__name")
    login = _number("login")
    status = _text("status")
    amount = _money("amount")
    original_leverage = _number("original_leverage")
    adjusted_leverage = _number("adjusted_leverage")
    restored_at = _time("restored_at", "leverage_restored_at")
    created_at = _time("created_at")


REPORT_RESOURCES: dict[str, type[resources.Resource]] = {
    "summary": SummaryResource,
    "conversions": ConversionsResource,
    "cancellations": CancellationsResource,
    "leverage": LeverageResource,
}


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    content_type: str
    filename: str


def report_export(
    *, report: str, file_format: str, filters: ReportFilters = NO_FILTERS
) -> ExportFile:
    """The report's rows as a CSV or XLSX file (`report` in REPORTS, `file_format` in FORMATS)."""
    export_format = FORMATS[file_format]()
    dataset = REPORT_RESOURCES[report]().export(
        report_rows(report=report, filters=filters),
        force_native_type=export_format.is_binary(),
    )
    content = export_format.export_data(dataset)
    if isinstance(content, str):
        content = content.encode("utf-8")
    stamp = timezone.now().astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    return ExportFile(
        content=content,
        content_type=export_format.get_content_type(),
        filename=f"bonus-{report}-{stamp}.{export_format.get_extension()}",
    )
