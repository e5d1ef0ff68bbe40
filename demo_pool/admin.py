"""Staff screens of the demo pool: the dashboard, the configuration row, accounts, press
passes, provisioning and health logs. Actions (replenish, retire, resend) call services.

Every action and page checks its own permission (granted per role in `accounts.roles`):
the dashboard is the pool status (`view_pool_status`), replenishing changes the configuration
(`change_poolconfig`), retiring needs `retire_demoaccount` and resending `resend_presspass`.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.admin import ReadOnlyAdminMixin
from core.errors import ApplicationError
from demo_pool import services
from demo_pool.models import (
    ActivationRequest,
    DemoAccount,
    HealthLog,
    PoolConfig,
    PressPass,
    ProvisioningRequest,
)
from demo_pool.selectors import availability_by_day, pool_status


@admin.register(PoolConfig)
class PoolConfigAdmin(admin.ModelAdmin):
    """One row: the changelist opens it directly."""

    readonly_fields = ("last_cleanup_at", "updated_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        config = PoolConfig.load()
        return HttpResponseRedirect(reverse("admin:demo_pool_poolconfig_change", args=[config.pk]))


class HealthLogInline(admin.TabularInline):
    model = HealthLog
    extra = 0
    max_num = 0
    can_delete = False
    fields = readonly_fields = (
        "checked_at", "healthy", "exists", "enabled", "connected", "balance", "equity", "error",
    )  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-checked_at")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DemoAccount)
class DemoAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "login", "status", "server", "balance", "leverage", "created_at", "assigned_at",
        "expires_at", "last_health_at", "health_failures", "needs_attention",
    )  # fmt: skip
    list_filter = ("status", "needs_attention")
    search_fields = ("login",)
    exclude = ("password",)  # the plaintext never reaches a page
    readonly_fields = [f.name for f in DemoAccount._meta.fields if f.name != "password"]
    inlines = [HealthLogInline]
    actions = ["retire_accounts"]

    def has_change_permission(self, request, obj=None):
        # The change page is how staff see an account (read-only).
        return request.user.has_perm("demo_pool.change_demoaccount")

    def has_retire_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("demo_pool.retire_demoaccount")

    def has_pool_status_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("demo_pool.view_pool_status")

    def get_urls(self):
        dashboard = self.admin_site.admin_view(self.dashboard_view)
        return [path("dashboard/", dashboard, name="demo_pool_dashboard"), *super().get_urls()]

    @admin.action(description="Retire the selected available accounts", permissions=["retire"])
    def retire_accounts(self, request: HttpRequest, queryset):
        retired = sum(
            services.account_retire(account=a, reason="retired by staff", actor=request.user)
            for a in queryset.filter(status=DemoAccount.Status.AVAILABLE)
        )
        self.message_user(request, f"{retired} account(s) retired.", messages.SUCCESS)

    def dashboard_view(self, request: HttpRequest):
        if not self.has_pool_status_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            if not request.user.has_perm("demo_pool.change_poolconfig"):
                messages.error(request, "Your role does not allow replenishing.")
            else:
                try:
                    count = max(1, min(1000, int(request.POST.get("count", "10"))))
                    queued = services.pool_replenish(count=count, actor=request.user)
                    messages.success(request, f"{queued} account(s) queued for provisioning.")
                except (ValueError, ApplicationError) as exc:
                    messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("admin:demo_pool_dashboard"))
        days = availability_by_day()
        context = {
            **self.admin_site.each_context(request),
            "title": "Demo pool dashboard",
            "status": pool_status(),
            "days": days,
            "chart": [
                {
                    **d,
                    "height": int((d["rate"] or 0) * 100),
                    "pct": None if d["rate"] is None else round(d["rate"] * 100),
                }
                for d in days
            ],
            "failures": ProvisioningRequest.objects.filter(
                status=ProvisioningRequest.Status.FAILED
            ).order_by("-finished_at")[:10],
            "flagged": DemoAccount.objects.filter(needs_attention=True, status="assigned")[:10],
            "can_replenish": request.user.has_perm("demo_pool.change_poolconfig"),
        }
        return TemplateResponse(request, "admin/demo_pool/dashboard.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "dashboard_url": reverse("admin:demo_pool_dashboard")
            if self.has_pool_status_permission(request)
            else None,
        }
        return super().changelist_view(request, extra_context)


@admin.register(PressPass)
class PressPassAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "user_id", "real_name", "account", "status", "delivery_method", "was_queued",
        "activated_at", "expires_at",
    )  # fmt: skip
    list_filter = ("status", "delivery_method", "was_queued")
    search_fields = ("user_id", "real_name", "account__login")
    list_select_related = ("account",)
    readonly_fields = [f.name for f in PressPass._meta.fields]
    actions = ["resend_credentials"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("demo_pool.change_presspass")

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("demo_pool.resend_presspass")

    @admin.action(
        description="Resend credentials (new password, earlier links stop working)",
        permissions=["resend"],
    )
    def resend_credentials(self, request: HttpRequest, queryset):
        handed, sent_out = [], 0
        for press_pass in queryset.filter(status=PressPass.Status.ACTIVE):
            try:
                result = services.press_pass_resend(
                    user_id=press_pass.user_id,
                    delivery_method=press_pass.delivery_method,
                    contact_info=press_pass.contact_info,
                    actor=request.user,
                )
            except ApplicationError as exc:
                self.message_user(request, f"{press_pass.user_id}: {exc}", messages.ERROR)
                continue
            if result.caller_link is not None:
                handed.append(
                    {
                        "user_id": press_pass.user_id,
                        "method": press_pass.delivery_method,
                        "link": result.caller_link,
                        "qr_svg": result.qr_svg,
                    }
                )
            else:
                sent_out += 1
        if not handed:
            self.message_user(request, f"{sent_out} press pass(es) resent.", messages.SUCCESS)
            return None
        # An api or qr pass's new link is the staff member's to hand over, and the old one is
        # dead: it is rendered straight into this answer (never a message, which a cookie or
        # the session would keep), the admin's never_cache keeping it out of caches.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Credentials resent",
            "sent": len(handed) + sent_out,
            "sent_out": sent_out,
            "handed": handed,
            "ttl_minutes": settings.DELIVERY_LINK_TTL_MINUTES,
        }
        return TemplateResponse(request, "admin/demo_pool/presspass/resent.html", context)


@admin.register(ProvisioningRequest)
class ProvisioningRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id", "status", "source", "attempts", "error_code", "latency_ms", "created_at",
        "finished_at", "next_attempt_at",
    )  # fmt: skip
    list_filter = ("status", "source", "error_code")
    readonly_fields = [f.name for f in ProvisioningRequest._meta.fields]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ActivationRequest)
class ActivationRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "public_id",
        "user_id",
        "status",
        "delivery_method",
        "created_at",
        "completed_at",
    )
    list_filter = ("status",)
    search_fields = ("user_id",)
    exclude = ("delivery_link",)
    readonly_fields = [f.name for f in ActivationRequest._meta.fields if f.name != "delivery_link"]


@admin.register(HealthLog)
class HealthLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "account",
        "checked_at",
        "healthy",
        "exists",
        "enabled",
        "connected",
        "balance",
        "error",
    )
    list_filter = ("healthy",)
    list_select_related = ("account",)
    search_fields = ("account__login",)
