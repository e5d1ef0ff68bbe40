"""Trading sessions: clients' broker accounts, their automated sessions, signals and trades.

A session is rows, never a process: signals fan out to active sessions in bulk, workers open
the trades through the broker gateway, and a scheduled task (plus a sweeper) settles them.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.money import CENT, ZERO
from delivery.fields import EncryptedTextField

_POSITIVE = [MinValueValidator(CENT)]


class BrokerAccount(models.Model):
    """A client's login on the broker; the password is kept encrypted and never shown."""

    class AccountType(models.TextChoices):
        DEMO = "demo", "Demo"
        REAL = "real", "Real"

    class Connection(models.TextChoices):
        UNKNOWN = "unknown", "Not checked"
        CONNECTED = "connected", "Connected"
        FAILED = "failed", "Login refused"
        UNAVAILABLE = "unavailable", "Broker did not answer"

    row_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="broker_accounts"
    )
    account_name = models.CharField(max_length=100)
    email = models.EmailField(max_length=254)
    password = EncryptedTextField(bind_to="row_key")
    account_type = models.CharField(max_length=4, choices=AccountType.choices)
    last_balance = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    connection_status = models.CharField(
        max_length=12, choices=Connection.choices, default=Connection.UNKNOWN
    )
    last_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "email", "account_type"], name="broker_account_unique_login"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_name} ({self.account_type})"


class TradingSession(models.Model):
    """An automated session on one broker account: stake, gale ladder, stop rules, run stats.

    The settings a run trades with are `settings_snapshot`, taken at start: editing a running
    session applies from its next start. The run statistics restart with every start; the
    trades keep the history.
    """

    class StopReason(models.TextChoices):
        MANUAL = "manual", "Stopped by its owner"
        STOP_PROFIT = "stop_profit", "Stop profit reached"
        STOP_LOSS = "stop_loss", "Stop loss reached"
        OPERATOR = "operator", "Stopped by an operator"
        BROKER_AUTH = "broker_auth_failed", "The broker refused the login"
        INSUFFICIENT_FUNDS = "insufficient_funds", "Not enough balance on the broker"
        ACCOUNT_CLOSED = "account_closed", "Its owner's account was deactivated"
        PLAN_ENDED = "plan_ended", "Its owner's plan was cancelled or expired"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trading_sessions"
    )
    account = models.ForeignKey(BrokerAccount, on_delete=models.PROTECT, related_name="sessions")
    session_name = models.CharField(max_length=100)
    trade_amount = models.DecimalField(max_digits=12, decimal_places=2, validators=_POSITIVE)
    gale_limit = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(10)], help_text="Steps up the ladder (0: none)."
    )
    gale_multiplier = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("2.00"),
        validators=[MinValueValidator(Decimal("1.00")), MaxValueValidator(Decimal("10.00"))],
    )
    max_trade_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=_POSITIVE,
        help_text="Optional cap on one stake.",
    )
    stop_profit = models.DecimalField(max_digits=12, decimal_places=2, validators=_POSITIVE)
    stop_loss = models.DecimalField(max_digits=12, decimal_places=2, validators=_POSITIVE)

    is_active = models.BooleanField(default=False, db_index=True)
    settings_snapshot = models.JSONField(default=dict, blank=True, editable=False)
    trade_in_flight = models.BooleanField(
        default=False, help_text="A signal's trade is open or opening: the next signal waits."
    )
    current_gale_count = models.PositiveSmallIntegerField(default=0)
    net_profit = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    total_trades = models.PositiveIntegerField(default=0)
    winning_trades = models.PositiveIntegerField(default=0)
    losing_trades = models.PositiveIntegerField(default=0)
    draw_trades = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=24, choices=StopReason.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["user", "id"], condition=Q(is_active=True), name="session_active_user"
            )
        ]

    def __str__(self) -> str:
        return self.session_name


class SignalChannel(models.Model):
    """A source of signals (a Telegram channel or an integration) users subscribe to."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    telegram_chat = models.CharField(
        max_length=64,
        blank=True,
        help_text='Telegram chat read for signals: "@channelname" or a numeric chat id.',
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class ChannelSubscription(models.Model):
    """A user's sessions take the signals of this channel."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="channel_subscriptions"
    )
    channel = models.ForeignKey(
        SignalChannel, on_delete=models.CASCADE, related_name="subscriptions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "user"], name="channel_subscription_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} -> {self.channel_id}"


class Signal(models.Model):
    """One trading signal, fanned out once to every active subscribed session.

    `ref` makes a repeat harmless: a Telegram update id, the integration's own id, or the
    signal's content and send time; the same (channel, ref) is the same signal.
    """

    class Source(models.TextChoices):
        API = "api", "API"
        TELEGRAM = "telegram", "Telegram"

    class Status(models.TextChoices):
        FANNING_OUT = "fanning_out", "Fanning out"
        DONE = "done", "Fanned out"
        STALE = "stale", "Skipped: stale"

    channel = models.ForeignKey(SignalChannel, on_delete=models.PROTECT, related_name="signals")
    asset = models.CharField(max_length=32)
    direction = models.CharField(max_length=4, choices=[("call", "Call"), ("put", "Put")])
    duration = models.PositiveIntegerField(help_text="Seconds.")
    sent_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    ref = models.CharField(max_length=100)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.FANNING_OUT)
    skip_reason = models.CharField(max_length=200, blank=True)
    fanout_cursor = models.BigIntegerField(
        default=0, help_text="Last session id fanned out: a resumed fan-out starts after it."
    )
    sessions_targeted = models.PositiveIntegerField(default=0)
    trades_created = models.PositiveIntegerField(default=0)
    sessions_skipped = models.PositiveIntegerField(default=0)
    fanout_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["channel", "ref"], name="signal_once")]

    def __str__(self) -> str:
        return f"{self.channel_id}: {self.asset} {self.direction} {self.duration}s"


class SignalSkip(models.Model):
    """A session a signal did not trade on, and why."""

    class Reason(models.TextChoices):
        TRADE_IN_FLIGHT = "trade_in_flight", "Its previous trade is not settled yet"
        DAILY_QUOTA = "daily_trade_quota", "Over the plan's trades per day"
        POSITIONS_QUOTA = "open_positions_quota", "Over the plan's open positions"
        LOSS_BUDGET = "loss_budget_spent", "Nothing left of the loss budget"
        PLAN_ENDED = "plan_ended", "The owner's plan is past its end"

    signal = models.ForeignKey(Signal, on_delete=models.CASCADE, related_name="skips")
    session = models.ForeignKey(TradingSession, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=24, choices=Reason.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["signal", "session"], name="signal_skip_once")
        ]

    def __str__(self) -> str:
        return f"signal {self.signal_id}, session {self.session_id}: {self.reason}"


class Trade(models.Model):
    """One trade on a client's broker account, from a signal or placed by hand.

    `client_order_id` goes to the broker with every attempt, so a retry never opens a second
    trade. `result` runs pending -> open -> win | loss | draw, or pending -> failed.
    """

    class Source(models.TextChoices):
        SIGNAL = "signal", "Signal"
        MANUAL = "manual", "Manual"

    class Result(models.TextChoices):
        PENDING = "pending", "Opening"
        OPEN = "open", "Open"
        WIN = "win", "Win"
        LOSS = "loss", "Loss"
        DRAW = "draw", "Draw"
        FAILED = "failed", "Failed"

    SETTLED = (Result.WIN, Result.LOSS, Result.DRAW)
    UNSETTLED = (Result.PENDING, Result.OPEN)

    client_order_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trades"
    )
    session = models.ForeignKey(
        TradingSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="trades"
    )
    account = models.ForeignKey(BrokerAccount, on_delete=models.PROTECT, related_name="trades")
    signal = models.ForeignKey(
        Signal, on_delete=models.PROTECT, null=True, blank=True, related_name="trades"
    )
    source = models.CharField(max_length=6, choices=Source.choices)
    asset = models.CharField(max_length=32)
    direction = models.CharField(max_length=4, choices=[("call", "Call"), ("put", "Put")])
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    duration = models.PositiveIntegerField(help_text="Seconds.")
    gale_step = models.PositiveSmallIntegerField(default=0)
    result = models.CharField(
        max_length=7, choices=Result.choices, default=Result.PENDING, db_index=True
    )
    profit = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    broker_trade_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    opened_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["signal", "session"],
                condition=Q(signal__isnull=False),
                name="trade_once_per_signal_session",
            )
        ]
        indexes = [
            models.Index(fields=["user", "created_at"], name="trade_user_day"),
            # Trades per day across everyone: the dashboard's chart and the per-minute gauge.
            models.Index(fields=["created_at"], name="trade_created"),
            models.Index(
                fields=["result", "expires_at"],
                condition=Q(result__in=["pending", "open"]),
                name="trade_unsettled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset} {self.direction} {self.amount} ({self.result})"

    @property
    def is_gale(self) -> bool:
        return self.gale_step > 0


class TelegramCursor(models.Model):
    """Where the Telegram reader is: the next update id to ask for (one row)."""

    next_offset = models.BigIntegerField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    updates_read = models.PositiveBigIntegerField(default=0)
    unparsed = models.PositiveBigIntegerField(default=0, help_text="Messages that were no signal.")

    def __str__(self) -> str:
        return f"Telegram reader at {self.next_offset}"
