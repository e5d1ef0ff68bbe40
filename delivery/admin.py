"""Staff screens of the deliveries: read-only, with the attempt log inline and the counts and
success rate above the list. Never the payload, the waiting link or the token hash."""

from django.contrib import admin
from django.db.models import Count

from core.admin import ReadOnlyAdminMixin
from delivery.models import Delivery, DeliveryAttempt
from delivery.selectors import delivery_stats

_SECRET_FIELDS = ("payload", "pending_link", "token_hash")


class DeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = readonly_fields = ("at", "action", "outcome", "ip", "user_agent", "is_preview_bot")
    ordering = ("at", "id")
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "attempts (every view and reveal of the link)"


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every delivery and what happened to its link; the counts and success rate on top."""

    change_list_template = "admin/delivery/delivery/change_list.html"
    list_display = (
        "id",
        "purpose",
        "method",
        "contact",
        "status",
        "attempt_count",
        "created_at",
        "expires_at",
        "sent_at",
        "revealed_at",
    )
    list_filter = ("status", "method", "created_at")
    search_fields = ("purpose", "contact", "=id")
    search_help_text = "Purpose, contact or id."
    date_hierarchy = "created_at"
    fields = (
        "purpose",
        "owner",
        "method",
        "contact",
        "status",
        "created_at",
        "expires_at",
        "sent_at",
        "revealed_at",
        "send_attempts",
        "last_error",
        "superseded_by",
    )
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .defer(*_SECRET_FIELDS)
            .annotate(attempt_count=Count("attempts"))
        )

    @admin.display(description="attempts", ordering="attempt_count")
    def attempt_count(self, delivery: Delivery) -> int:
        return delivery.attempt_count  # type: ignore[attr-defined]  # annotated in get_queryset

    def changelist_view(self, request, extra_context=None):
        stats = delivery_stats()
        rows = []
        for method, label in Delivery.Method.choices:
            rate = stats.success_rate(method)
            rows.append(
                {
                    "label": label,
                    "counts": [stats.count(method=method, status=s) for s in Delivery.Status],
                    "total": stats.count(method=method),
                    "rate": _percent(rate),
                }
            )
        extra_context = {
            **(extra_context or {}),
            "delivery_stats": {
                "statuses": [label for _, label in Delivery.Status.choices],
                "rows": rows,
                "totals": [stats.count(status=s) for s in Delivery.Status],
                "total": stats.count(),
                "rate": _percent(stats.success_rate()),
            },
        }
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The log of every request to a one-time link, preview bots labelled."""

    list_display = ("at", "delivery", "action", "outcome", "ip", "is_preview_bot", "user_agent")
    list_filter = ("action", "outcome", "is_preview_bot")
    search_fields = ("=ip", "user_agent", "=delivery__id")
    date_hierarchy = "at"
    fields = readonly_fields = (
        "delivery",
        "at",
        "action",
        "outcome",
        "ip",
        "user_agent",
        "is_preview_bot",
    )
    ordering = ("-at", "-id")
    list_select_related = ("delivery",)

    def get_queryset(self, request):
        # `delivery` renders as its __str__ (id, method, status): its secrets stay unread.
        return (
            super().get_queryset(request).defer(*(f"delivery__{name}" for name in _SECRET_FIELDS))
        )


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"
