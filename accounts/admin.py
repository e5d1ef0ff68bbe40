import functools
import logging
import math

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import redirect
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.urls import reverse
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from accounts.backends import locked_for
from accounts.models import (
    AccountEvent,
    ApiKey,
    AuditEvent,
    LoginLockout,
    MonitoredAccount,
    User,
)
from accounts.roles import API_KEY_SCOPES, Role
from accounts.services import (
    api_key_create,
    api_key_revoke,
    api_key_set_scopes,
    login_lockout_unlock,
    monitor_register,
    monitor_reset_errors,
    user_deactivate,
    user_roles,
)
from accounts.services.events import account_events_retry_now
from core.admin import ReadOnlyAdminMixin
from core.errors import ApplicationError, NotFoundError
from core.money import MAX_BIGINT, StrictIntegerFormField
from core.net import client_ip
from gateways.errors import GatewayError

logger = logging.getLogger(__name__)


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "username", "roles", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_active", "groups")
    search_fields = ("email", "username")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("username",)}),
        (
            "Access",
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups"),
                "description": "Staff roles are the groups Super Admin, Campaign Manager, "
                "Support Agent and Read-Only; a staff member also needs 'staff status'.",
            },
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    filter_horizontal = ("groups",)
    readonly_fields = ("last_login", "date_joined")

    @admin.display(description="roles")
    def roles(self, obj):
        return ", ".join(sorted(user_roles(obj))) or "client"

    def has_delete_permission(self, request, obj=None):
        # Users are deactivated, never deleted: the audit trail keeps its actors.
        return False

    def save_model(self, request, obj, form, change):
        """Unticking "active" is a deactivation, as the API's: the user's refresh tokens and
        API keys are revoked, what runs for them stops, and the audit trail says who did it.
        A plain save would only flip the flag and leave their keys working."""
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        if deactivating:
            obj.is_active = True  # saved with the other changes; user_deactivate flips it
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if deactivating:
                user_deactivate(user=obj, actor=request.user, ip=client_ip(request))

    actions = ["unlock_login"]

    @admin.action(
        description="Unlock login (lift a lockout after failed logins)", permissions=["change"]
    )
    def unlock_login(self, request, queryset):
        unlocked = 0
        for email in queryset.values_list("email", flat=True):
            try:
                login_lockout_unlock(email=email, actor=request.user, ip=client_ip(request))
            except ApplicationError:
                continue  # not locked
            unlocked += 1
        self.message_user(request, f"{unlocked} login(s) unlocked.", messages.SUCCESS)


def _is_super_admin(request) -> bool:
    return Role.SUPER_ADMIN in user_roles(request.user)


SCOPE_CHOICES = [
    ("triggers", "triggers: deposit, registration and promo-code triggers"),
    ("demo", "demo: demo pool status and refill, press-pass activation, resend, health"),
    ("signals", "signals: send trading signals"),
]
assert [scope for scope, _ in SCOPE_CHOICES] == list(API_KEY_SCOPES)


class ApiKeyForm(forms.ModelForm):
    grant_scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=SCOPE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Integration powers on top of the user's own roles. Only a Super Admin "
        "grants them; a key with none can do what its user can, nothing more.",
    )

    class Meta:
        model = ApiKey
        fields = ("user", "name")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["grant_scopes"].initial = list(self.instance.scopes or [])


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "user",
        "prefix",
        "scopes_label",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__email")
    form = ApiKeyForm
    fields = ("user", "name")
    autocomplete_fields = ("user",)
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scopes_label(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes or []) or "none"

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        shown = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
        # Scopes are a Super Admin's to change (on an active key); others only read them.
        return shown if _is_super_admin(request) and obj.is_active else (*shown, "scopes_label")

    def _may_grant(self, request, obj) -> bool:
        return _is_super_admin(request) and (obj is None or obj.is_active)

    def get_fields(self, request, obj=None):
        fields = self.get_readonly_fields(request, obj) or self.fields
        return (*fields, "grant_scopes") if self._may_grant(request, obj) else fields

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)  # a class made for this request
        if not self._may_grant(request, obj):
            form.base_fields.pop("grant_scopes", None)  # declared fields stay unless removed
        return form

    def add_view(self, request, form_url="", extra_context=None):
        response = super().add_view(request, form_url, extra_context)
        created = getattr(request, "_created_api_key", None)
        if created is None:
            return response
        api_key, raw = created
        # Rendered straight into this answer: never stored, never in a cookie or a message.
        context = {
            **self.admin_site.each_context(request),
            "api_key": api_key,
            "raw_key": raw,
            "opts": self.model._meta,
            "title": "API key created",
        }
        return TemplateResponse(request, "admin/accounts/apikey/created.html", context)

    def save_model(self, request, obj, form, change):
        scopes = form.cleaned_data.get("grant_scopes") if "grant_scopes" in form.fields else None
        if change:
            if scopes is not None and list(scopes) != list(obj.scopes or []):
                api_key_set_scopes(api_key=obj, scopes=scopes, actor=request.user)
            return
        api_key, raw = api_key_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            created_by=request.user,
            scopes=scopes or (),
        )
        obj.pk = api_key.pk
        # The ModelAdmin is shared by every request: the one-time key rides on this request.
        request._created_api_key = (api_key, raw)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "_created_api_key", None):
            return None
        return super().response_add(request, obj, post_url_continue)

    def save_related(self, request, form, formsets, change):
        pass

    def log_addition(self, request, obj, message):
        pass

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for api_key in queryset:
            try:
                api_key_revoke(api_key=api_key, actor=request.user, reason="revoked in the admin")
                revoked += 1
            except ApplicationError:
                continue
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)


@admin.register(LoginLockout)
class LoginLockoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Emails with failed logins counted, and those locked. Read-only: the login counts them;
    staff with the right lift a lockout (audited)."""

    list_display = ("email", "locked", "locked_until", "failures", "last_attempt_at")
    search_fields = ("email",)
    actions = ["unlock_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_unlock_permission(self, request) -> bool:
        return request.user.has_perm("accounts.change_user")

    @admin.display(boolean=True, description="locked")
    def locked(self, row: LoginLockout) -> bool:
        return row.is_locked

    @admin.action(description="Unlock selected", permissions=["unlock"])
    def unlock_selected(self, request, queryset):
        unlocked = 0
        for email in queryset.values_list("email", flat=True):
            try:
                login_lockout_unlock(email=email, actor=request.user, ip=client_ip(request))
            except ApplicationError:
                continue
            unlocked += 1
        self.message_user(request, f"{unlocked} login(s) unlocked.", messages.SUCCESS)


# --- The admin's login form and the per-account lockout ----------------------------------------


class LockoutAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form: a locked email is told so (not "wrong password")."""

    def get_invalid_login_error(self):
        seconds = locked_for(self.request)
        if seconds:
            return forms.ValidationError(
                "Too many failed logins for this account: it is locked. "
                f"Try again in {math.ceil(seconds / 60)} minute(s).",
                code="account_locked",
            )
        return super().get_invalid_login_error()


def _login_with_lockout(login_view):
    """The site's login view; a refusal for a locked email answers 429 with Retry-After."""

    @functools.wraps(login_view)
    def view(request, extra_context=None):
        response = login_view(request, extra_context)
        seconds = locked_for(request)
        if seconds and response.status_code == 200:
            response.status_code = 429
            response["Retry-After"] = str(seconds)
        return response

    return view


admin.site.login_form = LockoutAuthenticationForm
# The one site's login view, wrapped on that instance on purpose.
admin.site.login = _login_with_lockout(admin.site.login)  # type: ignore[method-assign]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: the trail is written by services and never changed."""

    list_display = (
        "at",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "mt5_login",
        "reason",
    )
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "actor_label", "mt5_login", "reason")
    date_hierarchy = "at"
    list_select_related = ()

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


# --- The account monitor ------------------------------------------------------------------------


class RegisterLoginForm(forms.Form):
    login = StrictIntegerFormField(label="MT5 login", min_value=1, max_value=MAX_BIGINT)


@admin.register(MonitoredAccount)
class MonitoredAccountAdmin(admin.ModelAdmin):
    """Every watched account with its snapshot and errors. Read-only: the sweep writes the
    rows; a Super Admin registers a login by hand and resumes paused accounts."""

    list_display = (
        "login",
        "status",
        "balance",
        "credit",
        "equity",
        "leverage",
        "consecutive_errors",
        "last_error_short",
        "last_polled_at",
        "last_changed_at",
    )
    list_filter = ("status",)
    search_fields = ("=login",)
    search_help_text = "An MT5 login."
    actions = ["reset_errors_selected"]
    add_form_template = "admin/accounts/monitoredaccount/register.html"

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [field.name for field in self.model._meta.fields]

    # A hand-edited row would race the sweep (a stale snapshot saved over a fresh one), so
    # nothing is changed here but through the services; add and change permissions gate them.

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_reset_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_monitoredaccount")

    @admin.display(description="last error")
    def last_error_short(self, row: MonitoredAccount) -> str:
        return truncatechars(row.last_error, 60)

    @admin.action(description="Reset errors and resume", permissions=["reset"])
    def reset_errors_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        resumed = 0
        for login in queryset.order_by("login").values_list("login", flat=True):
            try:
                monitor_reset_errors(login=login, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{login}: not resumed: {exc.detail}", messages.ERROR)
            else:
                resumed += 1
        if resumed:
            self.message_user(
                request, f"{resumed} account(s) active again, errors cleared.", messages.SUCCESS
            )

    def add_view(self, request: HttpRequest, form_url="", extra_context=None):
        """Register one login by hand: a form with just the login, then `monitor_register`."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RegisterLoginForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            login = form.cleaned_data["login"]
            try:
                row = monitor_register(login=login, actor=request.user)
            except NotFoundError as exc:
                form.add_error("login", exc.detail)
            except ApplicationError as exc:
                form.add_error(None, f"{exc.detail} ({exc.code})")
            except GatewayError as exc:
                logger.warning("admin register of %s: gateway error %s", login, exc)
                form.add_error(None, f"The MT5 server did not answer ({exc}); try again.")
            else:
                self.message_user(
                    request,
                    f"MT5 account {row.login} is monitored ({row.get_status_display().lower()}).",
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:accounts_monitoredaccount_changelist"))
        context = {
            **self.admin_site.each_context(request),
            **(extra_context or {}),
            "opts": self.model._meta,
            "title": "Register an MT5 account for monitoring",
            "form": form,
        }
        return TemplateResponse(request, self.add_form_template, context)


@admin.register(AccountEvent)
class AccountEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What the monitor saw and how handing it to the bonus engine went. Read-only; a Super
    Admin can bring a pending event's next attempt forward."""

    list_display = (
        "id",
        "login",
        "kind",
        "ticket",
        "amount",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error_short",
        "occurred_at",
        "handled_at",
    )
    list_filter = ("kind", "status")
    search_fields = ("=login", "=ticket")
    search_help_text = "An MT5 login or a deal ticket."
    actions = ["retry_now_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_accountevent")

    @admin.display(description="last error")
    def last_error_short(self, event: AccountEvent) -> str:
        return truncatechars(event.last_error, 60)

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        due = account_events_retry_now(ids=list(queryset.values_list("pk", flat=True)))
        skipped = queryset.count() - due
        self.message_user(
            request,
            f"{due} pending event(s) due now; the next dispatch takes them."
            + (f" {skipped} not pending, left as they are." if skipped > 0 else ""),
            messages.SUCCESS if due else messages.WARNING,
        )


# --- The beat schedule (django-celery-beat's screen) ------------------------------------------


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    """django-celery-beat's screen; its actions declare no permission, so these do: a role
    that may only read the schedule can neither switch a beat entry nor run it."""

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request, queryset):
        return super().enable_tasks(request, queryset)

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request, queryset):
        return super().disable_tasks(request, queryset)

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request, queryset):
        return super().toggle_tasks(request, queryset)

    @admin.action(description="Run selected tasks", permissions=["change"])
    def run_tasks(self, request, queryset):
        return super().run_tasks(request, queryset)
