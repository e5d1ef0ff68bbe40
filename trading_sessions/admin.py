"""Staff screens of trading sessions: sessions with their run stats and a stop action,
trades, signals with their fan-out counts and skip reasons, channels, subscriptions, broker
accounts (the password never shown) and the Telegram reader's cursor.

Staff see every user's rows here. Rows that carry money or run state change only through
the services (the actions); signal channels are plain configuration and are edited directly.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdminMixin
from core.errors import ApplicationError

from . import services
from .models import (
    BrokerAccount,
    ChannelSubscription,
    Signal,
    SignalChannel,
    SignalSkip,
    TelegramCursor,
    Trade,
    TradingSession,
)
from .selectors import win_rate
from .services.signals import signal_skip_counts


def _fields(model, *, leave_out=()) -> list[str]:
    return [f.name for f in model._meta.fields if f.name not in leave_out]


@admin.register(TradingSession)
class TradingSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id", "session_name", "owner", "account", "is_active", "net_profit", "total_trades",
        "win_rate_pct", "current_gale_count", "stop_reason", "started_at",
    )  # fmt: skip
    list_filter = ("is_active", "stop_reason")
    search_fields = ("session_name", "user__email")
    list_select_related = ("user", "account")
    readonly_fields = (*_fields(TradingSession), "win_rate_pct")
    actions = ["stop_selected"]

    def has_stop_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("trading_sessions.change_tradingsession")

    @admin.display(description="owner", ordering="user__email")
    def owner(self, session: TradingSession) -> str:
        return session.user.email

    @admin.display(description="win rate")
    def win_rate_pct(self, session: TradingSession) -> str:
        return f"{win_rate(session.winning_trades, session.total_trades)}%"

    @admin.action(description="Stop selected sessions", permissions=["stop"])
    def stop_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        stopped = 0
        for session in queryset.filter(is_active=True).order_by("pk"):
            services.session_stop(session=session, reason=TradingSession.StopReason.OPERATOR)
            stopped += 1
        self.message_user(request, f"{stopped} session(s) stopped.", messages.SUCCESS)


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id", "owner", "session", "source", "asset", "direction", "amount", "gale_step",
        "result", "profit", "created_at", "closed_at",
    )  # fmt: skip
    list_filter = ("result", "source", ("created_at", admin.DateFieldListFilter))
    search_fields = ("asset", "user__email")
    list_select_related = ("user", "session")
    date_hierarchy = "created_at"
    readonly_fields = _fields(Trade)
    show_full_result_count = False  # a count of every trade on each page view is too slow

    @admin.display(description="owner", ordering="user__email")
    def owner(self, trade: Trade) -> str:
        return trade.user.email


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id", "channel", "asset", "direction", "duration", "source", "status",
        "sessions_targeted", "trades_created", "sessions_skipped", "fanout_ms", "received_at",
    )  # fmt: skip
    list_filter = ("status", "source", "channel")
    search_fields = ("asset", "ref")
    list_select_related = ("channel",)
    readonly_fields = (*_fields(Signal), "skips_by_reason")

    @admin.display(description="skipped sessions by reason")
    def skips_by_reason(self, signal: Signal) -> str:
        counts = signal_skip_counts(signal)
        if not counts:
            return "None skipped."
        labels = dict(SignalSkip.Reason.choices)
        return format_html(
            "<table><thead><tr><th>reason</th><th>sessions</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td></tr>",
                ((labels.get(reason, reason), n) for reason, n in sorted(counts.items())),
            ),
        )


@admin.register(SignalChannel)
class SignalChannelAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "telegram_chat", "is_active", "subscribers", "created_at")
    list_filter = ("is_active",)
    search_fields = ("code", "name", "telegram_chat")

    @admin.display(description="subscribers")
    def subscribers(self, channel: SignalChannel) -> int:
        return channel.subscriptions.count()


@admin.register(ChannelSubscription)
class ChannelSubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "user", "channel", "created_at")
    list_filter = ("channel",)
    search_fields = ("user__email", "channel__code")
    list_select_related = ("user", "channel")
    readonly_fields = _fields(ChannelSubscription)


@admin.register(BrokerAccount)
class BrokerAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id", "account_name", "user", "email", "account_type", "connection_status",
        "last_balance", "last_checked_at", "created_at",
    )  # fmt: skip
    list_filter = ("account_type", "connection_status")
    search_fields = ("account_name", "email", "user__email")
    list_select_related = ("user",)
    exclude = ("password",)  # neither the plaintext nor the ciphertext reaches a page
    readonly_fields = _fields(BrokerAccount, leave_out={"password"})
    actions = ["test_connection"]

    def has_check_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("trading_sessions.change_brokeraccount")

    @admin.action(description="Test connection", permissions=["check"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet) -> None:
        outcomes = []
        for account in queryset.order_by("pk"):
            try:
                checked = services.broker_account_check(account=account)
            except ApplicationError as exc:
                outcomes.append(f"{account.pk}: {exc.detail}")
                continue
            outcomes.append(f"{account.pk}: {checked.get_connection_status_display()}")
        self.message_user(request, "; ".join(outcomes) or "No account selected.")


@admin.register(TelegramCursor)
class TelegramCursorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "next_offset", "last_polled_at", "updates_read", "unparsed")
    readonly_fields = _fields(TelegramCursor)
