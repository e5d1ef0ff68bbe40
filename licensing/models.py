"""Licensing: license keys (stored only as a peppered HMAC), plans with quotas, subscriptions,
quota holds, the API usage log and the trades license holders report."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class License(models.Model):
    """One license per licensed user, keyed by `account_id`. The key itself is never stored:
    `key_hash` is HMAC-SHA256(pepper, key), `key_last4` is for display only. EXPIRED is
    derived from `expires_at` at every validation; the stored status catches up by beat."""

    class Type(models.TextChoices):
        ADMIN = "ADMIN", "Admin"
        BETA = "BETA", "Beta"
        TRIAL = "TRIAL", "Trial"
        MONTHLY = "MONTHLY", "Monthly"
        ANNUAL = "ANNUAL", "Annual"

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        SUSPENDED = "SUSPENDED", "Suspended"
        EXPIRED = "EXPIRED", "Expired"

    class Code(models.TextChoices):
        VALID = "VALID"
        EXPIRED = "EXPIRED"
        SUSPENDED = "SUSPENDED"
        NOT_FOUND = "NOT_FOUND"

    account_id = models.CharField(max_length=64, unique=True)
    email = models.EmailField(blank=True)
    notes = models.TextField(blank=True)
    is_admin = models.BooleanField(default=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="licenses",
    )
    license_type = models.CharField(max_length=10, choices=Type.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    suspended_reason = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_last4 = models.CharField(max_length=4, editable=False)
    last_active_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_id"]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.account_id} ({self.license_type}, …{self.key_last4})"

    def code_at(self, now=None) -> str:
        """VALID, EXPIRED or SUSPENDED at `now` (suspension wins over expiry)."""
        return license_code(
            status=self.status, expires_at=self.expires_at, now=now or timezone.now()
        )


def license_code(*, status: str, expires_at, now) -> str:
    if status == License.Status.SUSPENDED:
        return License.Code.SUSPENDED
    if expires_at is not None and expires_at <= now:
        return License.Code.EXPIRED
    return License.Code.VALID


# Default lifetime of each license type; None never expires.
LICENSE_DURATIONS: dict[str, timedelta | None] = {
    License.Type.ADMIN: None,
    License.Type.BETA: timedelta(days=90),
    License.Type.TRIAL: timedelta(days=14),
    License.Type.MONTHLY: timedelta(days=30),
    License.Type.ANNUAL: timedelta(days=365),
}


class Quota(models.TextChoices):
    """What a plan limits. Gauges count what is held now; TRADES_PER_DAY counts per UTC day."""

    BROKER_ACCOUNTS = "max_broker_accounts", "Broker accounts"
    ACTIVE_SESSIONS = "max_active_sessions", "Active sessions"
    TRADES_PER_DAY = "max_trades_per_day", "Trades per day"
    OPEN_POSITIONS = "max_open_positions", "Open positions"
    SIGNAL_CHANNELS = "max_signal_channels", "Signal channels"


# What a user without an active subscription may do.
FREE_QUOTAS: dict[str, int] = {
    Quota.BROKER_ACCOUNTS: 1,
    Quota.ACTIVE_SESSIONS: 1,
    Quota.TRADES_PER_DAY: 10,
    Quota.OPEN_POSITIONS: 3,
    Quota.SIGNAL_CHANNELS: 2,
}


class Plan(models.Model):
    """A subscription plan (basic, premium, vip) and its quotas; staff edit them in the admin."""

    class Code(models.TextChoices):
        BASIC = "basic", "Basic"
        PREMIUM = "premium", "Premium"
        VIP = "vip", "VIP"

    code = models.CharField(max_length=20, choices=Code.choices, unique=True)
    name = models.CharField(max_length=100)
    price_monthly = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    max_broker_accounts = models.PositiveIntegerField(default=1)
    max_active_sessions = models.PositiveIntegerField(default=1)
    max_trades_per_day = models.PositiveIntegerField(default=10)
    max_open_positions = models.PositiveIntegerField(default=3)
    max_signal_channels = models.PositiveIntegerField(default=2)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["price_monthly", "code"]

    def __str__(self) -> str:
        return self.name

    def quotas(self) -> dict[str, int]:
        return {quota.value: getattr(self, quota.value) for quota in Quota}


class Subscription(models.Model):
    """A user's subscription to a plan between `starts_at` and `ends_at` (empty: open-ended).
    At most one is active per user at a time; cancelling sets `is_active` off."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(is_active=True),
                name="licensing_one_active_subscription_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.plan}"


class QuotaHold(models.Model):
    """One unit of a quota in use (a running session, a trade of the day), named by `ref`
    (e.g. "session:42") so holding it twice is impossible and releasing it is exact."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota_holds"
    )
    quota = models.CharField(max_length=32, choices=Quota.choices)
    ref = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "quota", "ref"], name="licensing_one_hold_per_ref"
            )
        ]
        indexes = [models.Index(fields=["user", "quota", "created_at"])]

    def __str__(self) -> str:
        return f"{self.quota} {self.ref}"


class ApiUsageLog(models.Model):
    """One API call: written in bulk by `usage_flush`, never on the request path. License and
    user ids are kept without a database constraint: the log outlives what it mentions."""

    created_at = models.DateTimeField(db_index=True)
    endpoint = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    status_code = models.PositiveSmallIntegerField()
    response_ms = models.FloatField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    license = models.ForeignKey(
        License,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["license", "created_at"])]

    def __str__(self) -> str:
        return f"{self.method} {self.endpoint} {self.status_code}"


class ReportedTrade(models.Model):
    """A trade a license holder's client reported (for their own statistics)."""

    class Side(models.TextChoices):
        BUY = "BUY", "Buy"
        SELL = "SELL", "Sell"

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="trades")
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(max_digits=18, decimal_places=6)
    entry_price = models.DecimalField(max_digits=18, decimal_places=6)
    exit_price = models.DecimalField(max_digits=18, decimal_places=6)
    pnl = models.DecimalField(max_digits=14, decimal_places=2)
    signal_confidence = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-closed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closed_at__gt=models.F("opened_at")),
                name="licensing_trade_closed_after_opened",
            ),
            models.CheckConstraint(
                condition=models.Q(entry_price__gt=0, exit_price__gt=0, quantity__gt=0),
                name="licensing_trade_positive_prices",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol}"
