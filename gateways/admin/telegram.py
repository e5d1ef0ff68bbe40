from django.contrib import admin

from gateways.models import SimulatedTelegramMessage, SimulatedTelegramUpdate


@admin.register(SimulatedTelegramMessage)
class SimulatedTelegramMessageAdmin(admin.ModelAdmin):
    """What the simulated bot sent, read-only: the record of every message."""

    list_display = ("id", "chat_id", "short_text", "sent_at")
    search_fields = ("chat_id", "text")
    ordering = ("-id",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="text")
    def short_text(self, obj: SimulatedTelegramMessage) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"


@admin.register(SimulatedTelegramUpdate)
class SimulatedTelegramUpdateAdmin(admin.ModelAdmin):
    """Updates waiting for the simulated bot: add one to simulate a signal channel post."""

    list_display = ("id", "chat_username", "chat_id", "text", "date", "confirmed_at")
    list_filter = (("confirmed_at", admin.EmptyFieldListFilter),)
    search_fields = ("chat_username", "chat_id", "text")
    fields = ("chat_id", "chat_username", "text", "date", "confirmed_at")
    readonly_fields = ("confirmed_at",)
    ordering = ("-id",)
