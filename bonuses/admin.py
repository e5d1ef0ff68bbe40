"""Staff screens of the bonus engine: the Bonus monitor (read-only, with a Super Admin's cancel
and force-convert actions), the approvals of manual credit above a limit (approve and reject
for Super Admins who did not ask), the credit ledger, and the pages of `bonuses.admin_views`
(manual assign, account lookup, reports). Every change goes through `bonuses.services`."""

import json
import logging

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.permissions import has_area
from bonuses import admin_views, services
from bonuses.models import Bonus, BonusApproval, Conversion, CreditIntent
from bonuses.selectors import bonus_events
from bonuses.types import bonus_kind
from core.admin import ReadOnlyAdminMixin
from core.errors import ApplicationError
from gateways.errors import GatewayError

logger = logging.getLogger("bonuses")

CANCEL_REASON_MAX = 160


class _ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False


class CreditIntentInline(_ReadOnlyInline):
    model = CreditIntent
    fields = readonly_fields = (
        "created_at",
        "kind",
        "amount",
        "leverage",
        "status",
        "deal_id",
        "attempts",
        "reason",
        "op_id",
        "last_error",
    )
    ordering = ("created_at", "id")
    verbose_name_plural = "credit ledger: this bonus's writes to MT5"


class ConversionInline(_ReadOnlyInline):
    model = Conversion
    fields = readonly_fields = ("created_at", "deal_ticket", "lots", "amount", "operation")
    ordering = ("created_at", "id")
    verbose_name_plural = "conversions (Type C, one per closed deal)"


@admin.register(Bonus)
class BonusAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The Bonus monitor: every bonus, read-only; cancel and force-convert for Super Admins."""

    change_list_template = "admin/bonuses/bonus/change_list.html"
    list_display = (
        "id",
        "login",
        "campaign_name",
        "bonus_type",
        "status",
        "trigger",
        "amount",
        "credit_remaining",
        "progress",
        "leverage",
        "created_at",
    )
    list_filter = ("status", "bonus_type", "campaign", "trigger")
    search_fields = ("=login",)
    search_help_text = "An MT5 login."
    list_select_related = ("campaign",)
    date_hierarchy = "created_at"
    actions = ["cancel_selected", "force_convert_selected"]
    inlines = [CreditIntentInline, ConversionInline]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "campaign",
                    "login",
                    "bonus_type",
                    "status",
                    "trigger",
                    "created_at",
                    "expires_at",
                    "ended_at",
                    "cancel_reason",
                )
            },
        ),
        (
            "Money",
            {
                "fields": (
                    "amount",
                    "credit_remaining",
                    "deposit_amount",
                    "deposit_deal_id",
                    "converted_amount",
                    "lots_required",
                    "lots_traded",
                    "progress",
                )
            },
        ),
        (
            "Leverage (Type A)",
            {"fields": ("original_leverage", "adjusted_leverage", "leverage_restored_at")},
        ),
        ("Manual grant", {"fields": ("granted_by", "override_reason", "overridden_failures")}),
        ("Audit trail", {"fields": ("audit_trail",)}),
    )
    readonly_fields = ("progress", "audit_trail")

    # --- Read-only, except through the actions ----------------------------------------------

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """Cancel and force-convert: Super Admin only (API.md's role table)."""
        return has_area(request, "bonuses.manage")

    # --- Columns ----------------------------------------------------------------------------

    @admin.display(description="campaign", ordering="campaign__name")
    def campaign_name(self, bonus: Bonus) -> str:
        return bonus.campaign.name

    @admin.display(description="progress")
    def progress(self, bonus: Bonus) -> str:
        if not bonus_kind(bonus.bonus_type).converts:
            return "-"
        if bonus.lots_required is None:
            return f"{bonus.progress_pct}%"
        return f"{bonus.progress_pct}% ({bonus.lots_traded} of {bonus.lots_required} lots)"

    @admin.display(description="leverage")
    def leverage(self, bonus: Bonus) -> str:
        if bonus.original_leverage is None:
            return "-"
        return f"1:{bonus.original_leverage} -> 1:{bonus.adjusted_leverage}"

    @admin.display(description="events")
    def audit_trail(self, bonus: Bonus) -> str:
        events = list(bonus_events(bonus=bonus))
        if not events:
            return "No events."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td><code>{}</code></td><td><code>{}</code></td></tr>",
            (
                (
                    f"{event.at:%Y-%m-%d %H:%M:%S}",
                    event.actor_label,
                    event.action,
                    event.reason,
                    _json(event.before),
                    _json(event.after),
                )
                for event in events
            ),
        )
        return format_html(
            "<table><thead><tr><th>at (UTC)</th><th>actor</th><th>action</th><th>reason</th>"
            "<th>before</th><th>after</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    # --- Actions ----------------------------------------------------------------------------

    @admin.action(description="Cancel selected bonuses", permissions=["manage"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet):
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/bonuses/bonus/cancel_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.model._meta,
                    "title": "Cancel bonuses?",
                    "bonuses": queryset.select_related("campaign").order_by("pk"),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "reason_max": CANCEL_REASON_MAX,
                },
            )
        reason = request.POST.get("reason", "").strip()[:CANCEL_REASON_MAX]
        reason = reason or "cancelled in the admin"
        self._each(
            request,
            queryset,
            "cancelled",
            lambda bonus: services.bonus_cancel(bonus=bonus, reason=reason, actor=request.user),
        )
        return None

    @admin.action(description="Force-convert selected Type C bonuses", permissions=["manage"])
    def force_convert_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request,
            queryset,
            "converted",
            lambda bonus: services.bonus_force_convert(bonus=bonus, actor=request.user),
        )

    def _each(self, request: HttpRequest, queryset: QuerySet, verb: str, call) -> None:
        """Run `call` on each bonus on its own, with a message per bonus."""
        for bonus in queryset.order_by("pk"):
            try:
                done = call(bonus)
            except ApplicationError as exc:
                self.message_user(
                    request, f"Bonus #{bonus.pk}: not {verb}: {exc.detail}", messages.ERROR
                )
            except GatewayError as exc:
                self.message_user(
                    request,
                    f"Bonus #{bonus.pk}: the MT5 server did not complete it ({exc}); the credit "
                    "ledger retries what it sent and reports what it could not.",
                    messages.ERROR,
                )
            except Exception:
                logger.exception("admin action failed", extra={"bonus": bonus.pk, "verb": verb})
                self.message_user(
                    request,
                    f"Bonus #{bonus.pk}: failed unexpectedly; the error is logged.",
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    f"Bonus #{bonus.pk} {verb} (now {done.get_status_display().lower()}).",
                    messages.SUCCESS,
                )

    # --- Pages ------------------------------------------------------------------------------

    def get_urls(self):
        pages = [
            ("assign/", self.assign_view, "bonuses_bonus_assign"),
            ("account-lookup/", self.account_lookup_view, "bonuses_bonus_account_lookup"),
            ("reports/", self.reports_view, "bonuses_bonus_reports"),
            ("reports/export/", self.report_export_view, "bonuses_bonus_report_export"),
        ]
        return [
            path(route, self.admin_site.admin_view(view), name=name) for route, view, name in pages
        ] + super().get_urls()

    def assign_view(self, request: HttpRequest):
        return admin_views.assign_view(self, request)

    def account_lookup_view(self, request: HttpRequest):
        return admin_views.account_lookup_view(self, request)

    def reports_view(self, request: HttpRequest):
        return admin_views.reports_view(self, request)

    def report_export_view(self, request: HttpRequest):
        return admin_views.report_export_view(self, request)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_assign": has_area(request, "bonuses.assign"),
            "can_lookup": has_area(request, "mt5.read"),
            "can_read_reports": has_area(request, "reports.read"),
        }
        return super().changelist_view(request, extra_context)


@admin.register(BonusApproval)
class BonusApprovalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Manual assigns above their requester's limit. Read-only; approve and reject are
    actions for holders of `bonuses.approve_bonusapproval` (Super Admins), and the service
    refuses a requester deciding on their own request."""

    list_display = (
        "id",
        "status",
        "login",
        "campaign",
        "amount",
        "requested_by",
        "created_at",
        "decided_by",
        "decided_at",
        "bonus_link",
    )
    list_filter = ("status", "campaign")
    search_fields = ("=login", "=deal_id")
    search_help_text = "An MT5 login or a deal id."
    list_select_related = ("campaign", "requested_by", "decided_by")
    date_hierarchy = "created_at"
    actions = ["approve_selected", "reject_selected"]
    readonly_fields = (
        "status",
        "login",
        "campaign",
        "amount",
        "deposit_amount",
        "deal_id",
        "override_eligibility",
        "reason",
        "limit_reason",
        "requested_by",
        "created_at",
        "decided_by",
        "decided_at",
        "decision_reason",
        "failure_code",
        "failure_detail",
        "bonus_link",
    )
    fields = readonly_fields

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("bonuses.approve_bonusapproval")

    @admin.display(description="bonus", ordering="bonus_id")
    def bonus_link(self, approval: BonusApproval) -> str:
        if approval.bonus_id is None:
            return "-"
        url = reverse("admin:bonuses_bonus_change", args=[approval.bonus_id])
        return format_html('<a href="{}">#{}</a>', url, approval.bonus_id)

    @admin.action(description="Approve and grant selected requests", permissions=["approve"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, "approved", services.bonus_approval_approve)

    @admin.action(description="Reject selected requests", permissions=["approve"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, "rejected", services.bonus_approval_reject)

    def _decide(self, request: HttpRequest, queryset: QuerySet, verb: str, decide) -> None:
        for approval in queryset.select_related("campaign").order_by("pk"):
            try:
                done = decide(approval=approval, actor=request.user, reason=f"{verb} in the admin")
            except ApplicationError as exc:
                self.message_user(
                    request, f"Request #{approval.pk}: not {verb}: {exc.detail}", messages.ERROR
                )
            except GatewayError as exc:
                self.message_user(
                    request,
                    f"Request #{approval.pk}: the MT5 server did not answer ({exc}); try again.",
                    messages.ERROR,
                )
            else:
                granted = f", bonus #{done.bonus_id}" if done.bonus_id else ""
                self.message_user(
                    request,
                    f"Request #{approval.pk} {verb} ({done.get_status_display().lower()}"
                    f"{granted}).",
                    messages.SUCCESS,
                )


@admin.register(CreditIntent)
class CreditIntentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The credit ledger: every write to MT5 and its outcome. Read-only, Super Admin only."""

    list_display = (
        "created_at",
        "login",
        "bonus_link",
        "kind",
        "amount",
        "leverage",
        "status",
        "deal_id",
        "attempts",
        "reason",
        "op_id",
    )
    list_filter = ("status", "kind", "reason")
    search_fields = ("=login", "=op_id", "=deal_id")
    search_help_text = "An MT5 login, an operation id (the deal comment) or a deal id."
    date_hierarchy = "created_at"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_area(request, "bonuses.manage")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_area(request, "bonuses.manage")

    @admin.display(description="bonus", ordering="bonus_id")
    def bonus_link(self, intent: CreditIntent) -> str:
        if intent.bonus_id is None:
            return "-"
        url = reverse("admin:bonuses_bonus_change", args=[intent.bonus_id])
        return format_html('<a href="{}">#{}</a>', url, intent.bonus_id)


def _json(value) -> str:
    return "" if value is None else json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)
