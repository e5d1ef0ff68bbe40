"""Staff screens of the simulated MT5 server: read-mostly, because money moves only through
deals (the gateway books them), never by editing a balance."""

from decimal import Decimal

from django.contrib import admin
from django.db.models import DecimalField, F, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from core.admin import ReadOnlyAdminMixin
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal, SimulatedMT5Position
from gateways.mt5.types import CENT


class _ReadOnly(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


@admin.register(SimulatedMT5Account)
class SimulatedMT5AccountAdmin(admin.ModelAdmin):
    """Accounts; staff may change who a client is and how they trade, not their money."""

    list_display = (
        "login",
        "server",
        "name",
        "group",
        "country",
        "balance",
        "credit",
        "equity",
        "leverage",
        "enabled",
    )
    list_filter = ("server", "group", "country", "enabled", "leverage")
    search_fields = ("=login", "name", "lead_source")
    fields = (
        "login",
        "server",
        "name",
        "group",
        "country",
        "lead_source",
        "comment",
        "leverage",
        "currency",
        "enabled",
        "balance",
        "credit",
        "registered_at",
    )
    readonly_fields = ("login", "server", "currency", "balance", "credit", "registered_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        zero = Value(0, output_field=DecimalField(max_digits=18, decimal_places=2))
        floating = Coalesce(Sum("positions__profit"), zero)
        return (
            super()
            .get_queryset(request)
            .annotate(equity_value=F("balance") + F("credit") + floating)
        )

    @admin.display(description="equity", ordering="equity_value")
    def equity(self, obj: SimulatedMT5Account) -> Decimal:
        # SQLite computes the sum without the column's scale: show cents like the others.
        return Decimal(obj.equity_value).quantize(CENT)  # type: ignore[attr-defined]  # annotated

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new account comes from the gateway (create_account) or the demo seed.
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(SimulatedMT5Deal)
class SimulatedMT5DealAdmin(_ReadOnly):
    """The deal history, as booked."""

    list_display = (
        "ticket",
        "account",
        "time",
        "action",
        "entry",
        "symbol",
        "volume",
        "profit",
        "comment",
        "position_id",
    )
    list_filter = ("action", "entry")
    search_fields = ("=account__login", "comment", "=position_id")
    date_hierarchy = "time"
    list_select_related = ("account",)


@admin.register(SimulatedMT5Position)
class SimulatedMT5PositionAdmin(_ReadOnly):
    """Open positions."""

    list_display = (
        "ticket",
        "account",
        "symbol",
        "side",
        "volume",
        "open_price",
        "profit",
        "opened_at",
    )
    list_filter = ("side", "symbol")
    search_fields = ("=account__login", "symbol")
    list_select_related = ("account",)
