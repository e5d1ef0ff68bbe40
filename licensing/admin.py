"""Staff screens: licenses (add with the key shown once or sent by a one-time link; filters,
extend/suspend/activate actions), plans, subscriptions, the API usage log with calls per
day, reported trades. Actions and the add form call the services."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from core.errors import ApplicationError
from core.money import StrictIntegerFormField
from delivery.errors import InvalidDeliveryError
from delivery.models import Delivery
from delivery.services import delivery_contact_check

from .models import ApiUsageLog, License, Plan, QuotaHold, ReportedTrade, Subscription
from .selectors import calls_per_day
from .services import (
    license_activate,
    license_create,
    license_create_delivered,
    license_extend,
    license_suspend,
)


class ExpiringSoonFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiring"

    def lookups(self, request, model_admin):
        return [
            ("7", "Expiring within 7 days"),
            ("30", "Expiring within 30 days"),
            ("past", "Expired"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "past":
            return queryset.filter(expires_at__lte=now)
        if self.value() in ("7", "30"):
            return queryset.filter(
                expires_at__gt=now, expires_at__lte=now + timedelta(days=int(self.value()))
            )
        return queryset


def _each(modeladmin, request, queryset, work, verb):
    done, refused = 0, []
    for license in queryset:
        try:
            work(license)
            done += 1
        except ApplicationError as exc:
            refused.append(f"{license.account_id}: {exc.detail}")
    modeladmin.message_user(request, f"{done} license(s) {verb}.")
    if refused:
        modeladmin.message_user(request, "; ".join(refused), level=messages.WARNING)


class LicenseAddForm(forms.ModelForm):
    """A new license: the key is shown once on the next page, or sent by a one-time link."""

    duration_days = StrictIntegerFormField(
        required=False,
        min_value=1,
        max_value=36500,
        help_text="Empty: the type's default (ADMIN never expires).",
    )
    delivery_method = forms.ChoiceField(
        required=False,
        choices=[("", "Show the key once on the next page"), *Delivery.Method.choices],
        help_text="Or send it through a one-time link (the key is then never shown here).",
    )
    contact_info = forms.CharField(
        required=False, max_length=254, help_text="Telegram chat id or @channel, or email."
    )

    class Meta:
        model = License
        fields = ["account_id", "email", "notes", "user", "license_type"]

    def clean(self):
        cleaned = super().clean()
        method = cleaned.get("delivery_method")
        if method:
            try:
                cleaned["contact_info"] = delivery_contact_check(
                    method=method, contact=cleaned.get("contact_info", "")
                )
            except InvalidDeliveryError as exc:
                self.add_error("contact_info", exc.detail)
        return cleaned


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    list_display = [
        "account_id",
        "email",
        "license_type",
        "status",
        "code",
        "expires_at",
        "key_last4",
        "last_active_at",
    ]
    list_filter = ["license_type", "status", ExpiringSoonFilter, "is_admin"]
    search_fields = ["account_id", "email", "notes"]
    readonly_fields = [
        "license_type",
        "status",
        "suspended_reason",
        "expires_at",
        "key_last4",
        "last_active_at",
        "created_at",
        "updated_at",
        "is_admin",
    ]
    fields = ["account_id", "email", "notes", "user", *readonly_fields]
    add_fields = [
        "account_id",
        "email",
        "notes",
        "user",
        "license_type",
        "duration_days",
        "delivery_method",
        "contact_info",
    ]
    raw_id_fields = ["user"]
    actions = ["extend_30_days", "suspend", "activate"]

    @admin.display(description="now")
    def code(self, obj):
        return obj.code_at()

    def has_delete_permission(self, request, obj=None):
        return False  # suspend instead: the audit trail and the usage log refer to it

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = LicenseAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return self.fields if obj is not None else self.add_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def add_view(self, request, form_url="", extra_context=None):
        response = super().add_view(request, form_url, extra_context)
        issued = getattr(request, "_licensing_issued", None)
        if issued is None:
            return response
        # Rendered straight into this answer: never stored, never in a cookie or a message.
        license, key, delivery = issued
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "License issued",
            "license": license,
            "license_key": key,
            "delivery": delivery,
            "handed": delivery is not None and delivery.caller_link is not None,
        }
        # The admin's views are never_cache: the page is not kept by the browser or a proxy.
        return TemplateResponse(request, "admin/licensing/license/issued.html", context)

    def save_model(self, request, obj, form, change):
        if not change:
            self._issue(request, obj, form.cleaned_data)
            return
        super().save_model(request, obj, form, change)
        from accounts.services import audit_record

        audit_record(
            action="license.edit",
            obj=obj,
            actor=request.user,
            after={name: str(form.cleaned_data.get(name)) for name in form.changed_data},
        )

    def _issue(self, request, obj, values):
        fields = {
            "account_id": values["account_id"],
            "license_type": values["license_type"],
            "email": values["email"],
            "notes": values["notes"],
            "user": values["user"],
            "duration_days": values["duration_days"],
            "actor": request.user,
        }
        if values["delivery_method"]:
            license, delivery = license_create_delivered(
                method=values["delivery_method"], contact=values["contact_info"], **fields
            )
            key = None
        else:
            license, key = license_create(**fields)
            delivery = None
        obj.pk = license.pk
        # The ModelAdmin is shared by every request: the one-time key rides on this request.
        request._licensing_issued = (license, key, delivery)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "_licensing_issued", None):
            return None  # add_view renders the page that shows the key once
        return super().response_add(request, obj, post_url_continue)

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def log_addition(self, request, obj, message):
        pass  # license_create audits it

    @admin.action(description="Extend by 30 days", permissions=["change"])
    def extend_30_days(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda lic: license_extend(license=lic, days=30, actor=request.user),
            "extended",
        )

    @admin.action(description="Suspend", permissions=["change"])
    def suspend(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda lic: license_suspend(license=lic, reason="admin action", actor=request.user),
            "suspended",
        )

    @admin.action(description="Activate", permissions=["change"])
    def activate(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda lic: license_activate(license=lic, actor=request.user),
            "activated",
        )


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "price_monthly",
        "max_broker_accounts",
        "max_active_sessions",
        "max_trades_per_day",
        "max_open_positions",
        "max_signal_channels",
        "is_active",
    ]
    list_editable = [
        "max_broker_accounts",
        "max_active_sessions",
        "max_trades_per_day",
        "max_open_positions",
        "max_signal_channels",
        "is_active",
    ]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["user", "plan", "starts_at", "ends_at", "is_active", "cancelled_at"]
    list_filter = ["plan", "is_active"]
    search_fields = ["user__email"]
    raw_id_fields = ["user"]
    list_select_related = ["user", "plan"]


@admin.register(QuotaHold)
class QuotaHoldAdmin(admin.ModelAdmin):
    list_display = ["user", "quota", "ref", "created_at"]
    list_filter = ["quota"]
    search_fields = ["user__email", "ref"]
    raw_id_fields = ["user"]


@admin.register(ApiUsageLog)
class ApiUsageLogAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "method",
        "endpoint",
        "status_code",
        "response_ms",
        "ip",
        "license_id",
        "user_id",
    ]
    list_filter = ["method", "status_code"]
    search_fields = ["endpoint", "ip"]
    date_hierarchy = "created_at"
    change_list_template = "admin/licensing/apiusagelog/change_list.html"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        days = calls_per_day(days=30)
        peak = max((d["calls"] for d in days), default=0) or 1
        chart = [{**d, "pct": round(d["calls"] * 100 / peak)} for d in days]
        return super().changelist_view(request, {**(extra_context or {}), "calls_chart": chart})


@admin.register(ReportedTrade)
class ReportedTradeAdmin(admin.ModelAdmin):
    list_display = [
        "license",
        "symbol",
        "side",
        "quantity",
        "entry_price",
        "exit_price",
        "pnl",
        "closed_at",
    ]
    list_filter = ["side"]
    search_fields = ["license__account_id", "symbol"]
    list_select_related = ["license"]
    raw_id_fields = ["license"]
