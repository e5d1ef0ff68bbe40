"""Staff screens for campaigns: every change goes through campaigns.services (and is audited)."""

from typing import cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path

from accounts.models import User
from core.errors import ApplicationError
from core.net import client_ip
from gateways.errors import GatewayError

from .forms import CampaignAdminForm
from .models import Campaign
from .selectors import mt5_last_scan
from .services import (
    campaign_create,
    campaign_duplicate,
    campaign_set_status,
    campaign_update,
    mt5_scan,
)
from .validation import EDITABLE_FIELDS


def _staff(request: HttpRequest) -> User:
    # The admin serves only logged-in staff: never the anonymous user here.
    return cast(User, request.user)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """Campaigns: list, filter, search, edit; lifecycle and copies through actions."""

    form = CampaignAdminForm
    change_list_template = "admin/campaigns/campaign/change_list.html"
    list_display = (
        "name",
        "status",
        "bonus_type",
        "trigger_type",
        "percentage",
        "promo_code",
        "stacking",
        "priority",
        "starts_at",
        "ends_at",
        "updated_at",
    )
    list_filter = ("status", "bonus_type", "trigger_type", "stacking")
    search_fields = ("name", "description", "promo_code")
    readonly_fields = ("status", "created_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description", "status")}),
        (
            "Bonus",
            {
                "fields": (
                    "bonus_type",
                    "percentage",
                    "max_bonus",
                    "fixed_amount",
                    "convert_per_lot",
                    "bonus_expiry_days",
                )
            },
        ),
        ("Trigger", {"fields": ("trigger_type", "promo_code", "agent_codes")}),
        (
            "On one deposit",
            {
                "fields": ("stacking", "priority"),
                "description": "Campaigns a deposit qualifies for fire in priority order, "
                "highest first (a tie: the older campaign). The first fires; others join "
                "only if it and they are all stackable.",
            },
        ),
        (
            "Who qualifies",
            {
                "fields": (
                    "target_groups",
                    "target_countries",
                    "min_deposit",
                    "max_deposit",
                    "one_per_account",
                    "max_concurrent",
                )
            },
        ),
        ("Dates", {"fields": ("starts_at", "ends_at")}),
        ("Record", {"fields": ("created_by", "created_at", "updated_at")}),
    )
    actions = ["activate", "pause", "end", "archive", "duplicate"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # An archived campaign is frozen (its promo code may be live elsewhere again).
        if obj is not None and obj.status == Campaign.Status.ARCHIVED:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Bonuses and the audit trail point at campaigns: archive instead.
        return False

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS if name in form.fields}
        if change:
            campaign_update(campaign=obj, actor=_staff(request), ip=client_ip(request), **fields)
            return
        created = campaign_create(actor=_staff(request), ip=client_ip(request), **fields)
        obj.pk = created.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change) -> None:
        pass  # no relations to save; the service wrote the row

    # --- Lifecycle actions ----------------------------------------------------------------

    @admin.action(description="Activate selected campaigns", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._move(request, queryset, Campaign.Status.ACTIVE, "activated")

    @admin.action(description="Pause selected campaigns", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._move(request, queryset, Campaign.Status.PAUSED, "paused")

    @admin.action(description="End selected campaigns", permissions=["change"])
    def end(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._move(request, queryset, Campaign.Status.ENDED, "ended")

    @admin.action(description="Archive selected campaigns", permissions=["change"])
    def archive(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._move(request, queryset, Campaign.Status.ARCHIVED, "archived")

    @admin.action(description="Duplicate selected campaigns (as drafts)", permissions=["add"])
    def duplicate(self, request: HttpRequest, queryset: QuerySet) -> None:
        copies = [
            campaign_duplicate(campaign=campaign, actor=_staff(request), ip=client_ip(request))
            for campaign in queryset.order_by("pk")
        ]
        names = ", ".join(copy.name for copy in copies)
        self.message_user(
            request, f"{len(copies)} draft copy(ies) made: {names}.", messages.SUCCESS
        )

    def _move(self, request: HttpRequest, queryset: QuerySet, status: str, verb: str) -> None:
        moved, refused = [], []
        for campaign in queryset.order_by("pk"):
            try:
                campaign_set_status(
                    campaign=campaign,
                    status=status,
                    actor=_staff(request),
                    reason=f"admin action: {verb}",
                    ip=client_ip(request),
                )
            except ApplicationError as exc:
                refused.append(f"{campaign.name}: {exc.detail}")
            else:
                moved.append(campaign.name)
        if moved:
            self.message_user(
                request, f"{len(moved)} campaign(s) {verb}: {', '.join(moved)}.", messages.SUCCESS
            )
        if refused:
            self.message_user(request, f"Not {verb}: {'; '.join(refused)}", messages.ERROR)

    # --- Scan MT5 -------------------------------------------------------------------------

    def get_urls(self):
        scan = path(
            "scan-mt5/",
            self.admin_site.admin_view(self.scan_mt5_view),
            name="campaigns_campaign_scan_mt5",
        )
        return [scan, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "mt5_scan": mt5_last_scan(),
            "can_scan_mt5": self.has_change_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def scan_mt5_view(self, request: HttpRequest) -> HttpResponse:
        """POST: refresh the groups and countries the campaign form offers."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        try:
            scan = mt5_scan(actor=_staff(request), ip=client_ip(request))
        except GatewayError as exc:
            self.message_user(
                request,
                f"The MT5 server did not answer the scan ({exc}); the previous choices stay.",
                messages.ERROR,
            )
        else:
            self.message_user(
                request,
                f"Scanned MT5: {len(scan.groups)} groups, {len(scan.countries)} countries.",
                messages.SUCCESS,
            )
        return redirect("admin:campaigns_campaign_changelist")
