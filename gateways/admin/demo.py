from django.contrib import admin

from gateways.models import SimulatedDemoAccount


@admin.register(SimulatedDemoAccount)
class SimulatedDemoAccountAdmin(admin.ModelAdmin):
    """Accounts on the simulated demo server; staff can toggle their state, never see a secret."""

    list_display = (
        "login",
        "name",
        "group",
        "balance",
        "leverage",
        "currency",
        "enabled",
        "connected",
        "created_at",
    )
    list_filter = ("enabled", "connected", "group", "currency")
    search_fields = ("name", "idempotency_id")
    # The password hash is left out on purpose: secrets are never shown.
    fields = (
        "login",
        "name",
        "group",
        "idempotency_id",
        "balance",
        "leverage",
        "currency",
        "enabled",
        "connected",
        "created_at",
    )
    readonly_fields = (
        "login",
        "name",
        "group",
        "idempotency_id",
        "leverage",
        "currency",
        "created_at",
    )
    ordering = ("-id",)

    def has_add_permission(self, request) -> bool:
        # Accounts are created through the gateway, like on the real server.
        return False

    @admin.display(description="login", ordering="id")
    def login(self, obj: SimulatedDemoAccount) -> int:
        return obj.login
