"""The warm pool of MT5 demo accounts, press-pass trials and the provisioning queue.

An account moves provisioning -> available -> assigned -> expired, or ends failed (the server
refused to create it) or retired (unhealthy, or past its own expiry while unused). Only the
current password is kept, encrypted under delivery's keyring and bound to the row.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from delivery.fields import EncryptedTextField


def _default_server_name() -> str:
    return settings.DEMO_POOL_SERVER_NAME or settings.MT5_SERVER


class PoolConfig(models.Model):
    """The pool's sizing and the new accounts' defaults: one row (pk 1), edited in the admin."""

    SINGLETON_PK = 1

    min_available = models.PositiveIntegerField(
        default=25,
        help_text="The floor: never fewer available accounts than this. The refill starts "
        "under the target, so target minus min is the headroom that covers demand while a "
        "batch is provisioned.",
    )
    target_buffer = models.PositiveIntegerField(
        default=40,
        help_text="The refill keeps available + provisioning accounts at this (plus waiting "
        "activations); an assignment that drops the pool under it starts a refill at once.",
    )
    max_pool_size = models.PositiveIntegerField(
        default=100,
        help_text="Never more accounts kept warm (provisioning + available). Assigned accounts "
        "belong to their press passes and do not count.",
    )
    provision_batch_size = models.PositiveIntegerField(
        default=5,
        help_text="Accounts a refill queues at a time and provisions concurrently; it queues "
        "batch after batch while the pool is under the target.",
    )
    health_check_interval_minutes = models.PositiveIntegerField(default=15)
    cleanup_interval_hours = models.PositiveIntegerField(default=4)
    initial_balance = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("50000.00")
    )
    currency = models.CharField(max_length=3, default="USD")
    leverage = models.PositiveIntegerField(default=100, help_text="1:N")
    account_expiry_days = models.PositiveIntegerField(
        default=30, help_text="An unused account is retired after this many days."
    )
    press_pass_days = models.PositiveIntegerField(
        default=7, help_text="How long a press pass lasts."
    )
    server_name = models.CharField(
        max_length=64,
        default=_default_server_name,
        help_text="Shown with the credentials when the gateway names no server.",
    )
    group = models.CharField(max_length=64, default="demo\\standard")
    last_cleanup_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "pool configuration"
        verbose_name_plural = "pool configuration"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="demo_pool_config_singleton"),
        ]

    def __str__(self) -> str:
        return "Demo pool configuration"

    @classmethod
    def load(cls) -> "PoolConfig":
        """The one row, made with the defaults on first use."""
        config, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return config


class DemoAccount(models.Model):
    """One MT5 demo account of the pool (login null while it is being provisioned)."""

    class Status(models.TextChoices):
        PROVISIONING = "provisioning", "Provisioning"
        AVAILABLE = "available", "Available"
        ASSIGNED = "assigned", "Assigned"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"
        RETIRED = "retired", "Retired"

    LIVE = (Status.PROVISIONING, Status.AVAILABLE, Status.ASSIGNED)
    # What staff keep warm, and what max_pool_size caps: assigned accounts belong to people.
    POOL = (Status.PROVISIONING, Status.AVAILABLE)

    row_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    login = models.BigIntegerField(null=True, blank=True, unique=True)
    server = models.CharField(max_length=64, blank=True)
    password = EncryptedTextField(bind_to="row_key", null=True)
    balance = models.DecimalField(max_digits=14, decimal_places=2)
    leverage = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PROVISIONING, db_index=True
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    available_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Unused: the account's own expiry; assigned: the pass's."
    )
    last_health_at = models.DateTimeField(null=True, blank=True, db_index=True)
    health_failures = models.PositiveIntegerField(
        default=0, help_text="Failed health checks in a row."
    )
    needs_attention = models.BooleanField(
        default=False, help_text="An assigned account failed a health check: staff look at it."
    )
    reason = models.CharField(max_length=300, blank=True, help_text="Why it failed or retired.")
    ended_at = models.DateTimeField(null=True, blank=True)
    cleaned_at = models.DateTimeField(
        null=True, blank=True, help_text="Disabled on the server and password wiped."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="demo_account_claim")]
        # What the admin's actions and pages check (roles: accounts.roles).
        permissions = [
            ("retire_demoaccount", "Can retire demo accounts"),
            ("view_pool_status", "Can view the demo pool status and dashboard"),
        ]

    def __str__(self) -> str:
        return f"Demo {self.login or '(provisioning)'} ({self.status})"


class ProvisioningRequest(models.Model):
    """One account to create on the demo server; `idempotency_id` makes a retry harmless.

    pending -> in_progress (claimed, with a lease) -> done | failed; a transient error puts it
    back to pending with a later `next_attempt_at`.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    account = models.OneToOneField(
        DemoAccount, on_delete=models.CASCADE, related_name="provisioning"
    )
    idempotency_id = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    source = models.CharField(max_length=32, default="refill", help_text="refill, replenish, …")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From queued to available."
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Provisioning #{self.pk} ({self.status})"


class PressPass(models.Model):
    """A trial: one demo account handed to one person (external `user_id`) for a few days.

    At most one active pass per user (a partial unique constraint makes "twice" impossible).
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"

    user_id = models.CharField(max_length=64, db_index=True)
    real_name = models.CharField(max_length=128)
    account = models.ForeignKey(DemoAccount, on_delete=models.PROTECT, related_name="passes")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    delivery_method = models.CharField(max_length=16)
    contact_info = models.CharField(max_length=254, blank=True)
    delivery = models.ForeignKey(
        "delivery.Delivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    was_queued = models.BooleanField(default=False, help_text="Waited for a provisioned account.")
    activated_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    rotating_until = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="A password rotation (hand-over or resend) holds the pass until then.",
    )

    class Meta:
        ordering = ["-activated_at", "-id"]
        verbose_name = "press pass"
        verbose_name_plural = "press passes"
        # Resending rotates the password and kills the earlier links (roles: accounts.roles).
        permissions = [("resend_presspass", "Can resend press-pass credentials")]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id"],
                condition=Q(status="active"),
                name="demo_press_pass_one_active_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"Press pass {self.user_id} ({self.status})"

    @property
    def purpose(self) -> str:
        """What its deliveries are for: a resend supersedes every earlier one."""
        return f"demo_pool.press_pass:{self.pk}"


class ActivationRequest(models.Model):
    """A press-pass activation that found the pool empty: it waits for a provisioned account.

    queued -> provisioning (an account is being handed over) -> assigned | failed.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROVISIONING = "provisioning", "Provisioning"
        ASSIGNED = "assigned", "Assigned"
        FAILED = "failed", "Failed"

    OPEN = (Status.QUEUED, Status.PROVISIONING)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user_id = models.CharField(max_length=64, db_index=True)
    real_name = models.CharField(max_length=128)
    delivery_method = models.CharField(max_length=16)
    contact_info = models.CharField(max_length=254, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    press_pass = models.OneToOneField(
        PressPass, null=True, blank=True, on_delete=models.SET_NULL, related_name="request"
    )
    # api and qr deliveries: the link is handed back on the status answer, so it waits here.
    delivery_link = EncryptedTextField(bind_to="public_id", null=True)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id"],
                condition=Q(status__in=["queued", "provisioning"]),
                name="demo_activation_one_open_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"Activation request {self.public_id} ({self.status})"


class ActivationReplay(models.Model):
    """The first answer of a press-pass activation sent with an `Idempotency-Key`, replayed to
    retries of the same request (same caller, `user_id`, key and body) while its link lives.

    Of the key only a hash is kept, with the user id (`key_hash`: one row per user and key).
    The answer (it may hold the one-time link) is sealed with a key derived from the
    idempotency key (HKDF, as a link seals its payload), then encrypted under the keyring and
    bound to this row: the database, even with the keyring, does not open it without the key.
    A row is written (without an answer) before the activation runs and gets the answer
    after it; a failed activation removes its row; expired ones are purged as activations
    with a key come in.
    """

    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    user_id = models.CharField(max_length=64, db_index=True)
    caller = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the request body.")
    status_code = models.PositiveSmallIntegerField(null=True)
    answer = EncryptedTextField(bind_to="key_hash", null=True)
    press_pass = models.ForeignKey(
        PressPass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Activation replay for {self.user_id} ({self.status_code})"


class HealthLog(models.Model):
    """One health check of one account: what the server said, or the error."""

    account = models.ForeignKey(DemoAccount, on_delete=models.CASCADE, related_name="health_logs")
    checked_at = models.DateTimeField(default=timezone.now, db_index=True)
    healthy = models.BooleanField()
    exists = models.BooleanField(default=False)
    enabled = models.BooleanField(default=False)
    connected = models.BooleanField(default=False)
    balance = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    equity = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]

    def __str__(self) -> str:
        return f"{self.account_id} {'ok' if self.healthy else 'failed'} at {self.checked_at}"
