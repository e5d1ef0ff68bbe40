from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.template.response import TemplateResponse

from accounts.errors import ApplicationError
from accounts.models import ApiKey, AuditEvent, User
from accounts.services import api_key_create, api_key_revoke, user_roles


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


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__email")
    fields = ("user", "name")
    autocomplete_fields = ("user",)
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at") if obj else ()

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) or self.fields

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
        if change:
            return
        api_key, raw = api_key_create(
            user=form.cleaned_data["user"], name=form.cleaned_data["name"], created_by=request.user
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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
