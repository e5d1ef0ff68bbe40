"""People and what they hold: users, integration API keys, and the audit trail."""

from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively: one person, one address, stored lower-case."""
    return email.strip().lower()


class User(AbstractBaseUser, PermissionsMixin):
    """Anyone who logs in: staff (a role group, admin access) or a client (API only).

    Users are deactivated, never deleted, so that the audit trail keeps its actors.
    """

    email = models.EmailField(unique=True)
    username = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Can log in to the admin. Set for members of a staff role."
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            # "Admin" and "admin" are one name: no client takes a name staff already use.
            models.UniqueConstraint(
                Lower("username"),
                condition=~models.Q(username=""),
                name="user_username_ci_unique",
                violation_error_message="This username is taken.",
            )
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)


class ApiKey(models.Model):
    """An integration's credential: `Api-Key <prefix>.<secret>`, acting as its user.

    Only a SHA-256 of the secret is stored; the whole key is shown once, when it is made.
    The secret has 256 random bits, so a fast hash is as safe here as a slow one.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="Who uses it, e.g. 'CRM deposit hook'.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    scopes = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Integration powers beyond the user's roles (`accounts.roles.API_KEY_SCOPES`); "
        "granted only by a Super Admin.",
    )

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class LoginLockout(models.Model):
    """Failed logins of one email address, whether or not an account has it.

    Each attempt is counted before its password is checked (a success gives its count back),
    so concurrent guesses cannot all slip under the limit. Past `LOGIN_LOCKOUT_MAX_FAILURES`
    within `LOGIN_LOCKOUT_WINDOW_SECONDS`, the address is locked until `locked_until`: even the
    right password is refused, from any client address. Staff can unlock it earlier.
    """

    email = models.CharField(max_length=254, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_attempt_at"]
        verbose_name = "login lockout"

    def __str__(self) -> str:
        return self.email

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()


class TokenFamily(models.Model):
    """The refresh tokens that descend, by rotation, from one login.

    `key` is the `jti` of the login's first refresh token; every descendant carries it in its
    `fam` claim. Rotations of one family take this row's lock, so exactly one refresh of a
    token wins. Logout, or a rotated token presented again, revokes the whole family.
    """

    class Reason(models.TextChoices):
        LOGOUT = "logout", "Logged out"
        REUSE = "reuse", "A rotated token was presented again"
        PASSWORD = "password", "The password was changed"

    key = models.CharField(max_length=255, unique=True)
    user = models.ForeignKey(User, null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=8, choices=Reason.choices, blank=True)

    class Meta:
        verbose_name_plural = "token families"

    def __str__(self) -> str:
        return self.key


class TokenFamilyMember(models.Model):
    """One refresh token of a family (its outstanding row), so a revocation blacklists all."""

    family = models.ForeignKey(TokenFamily, on_delete=models.CASCADE, related_name="members")
    outstanding = models.OneToOneField(
        "token_blacklist.OutstandingToken", on_delete=models.CASCADE, related_name="family_member"
    )

    def __str__(self) -> str:
        return f"{self.outstanding_id} in {self.family_id}"


class AuditRefused(Exception):
    """Raised by any attempt to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditRefused("Audit events cannot be changed.")

    def delete(self):
        raise AuditRefused("Audit events cannot be deleted.")

    # bulk_update goes through update(); bulk_create would skip the chain (only
    # audit_record_many, which links the chain itself, calls the QuerySet's own).
    def bulk_create(self, *args, **kwargs):
        raise AuditRefused("Audit events are written through audit_record() or its _many.")


class AuditEvent(models.Model):
    """One thing that happened, by whom, with the state before and after. Never changed.

    Events of one object form a hash chain: `hash` covers this event's content and the
    previous event's hash, so a row altered behind the application's back breaks its chain
    (`manage.py verify_audit` names where). One chain per object keeps concurrent writers on
    different objects from queueing behind one lock.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(
        max_length=254, help_text='The actor\'s email at the time, or "system".'
    )
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    mt5_login = models.BigIntegerField(null=True, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    reason = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    seq = models.PositiveBigIntegerField(help_text="Position in its object's chain, from 1.")
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["object_type", "object_id", "seq"], name="audit_one_event_per_link"
            )
        ]
        indexes = [models.Index(fields=["object_type", "object_id", "seq"], name="audit_chain")]

    def __str__(self) -> str:
        when = f"{self.at:%Y-%m-%d %H:%M:%S}"
        return f"{when} {self.actor_label} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise AuditRefused("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditRefused("Audit events cannot be deleted.")


class MonitoredAccount(models.Model):
    """An MT5 client account the monitor watches: its last seen numbers and its deal cursor.

    The snapshot (balance, credit, equity, leverage, `state_at`) and `deal_cursor` only move
    in the transaction that records the events they produced, so a crash re-detects rather
    than loses. Deals older than `watch_from` are history: seen, never acted on.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    server = models.CharField(max_length=64)
    login = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    balance = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    credit = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    equity = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    leverage = models.PositiveIntegerField(default=0)
    state_at = models.DateTimeField(
        null=True, blank=True, help_text="When the server reported the snapshot's numbers."
    )
    deal_cursor = models.BigIntegerField(
        default=0, help_text="The last deal ticket the monitor has taken into account."
    )
    watch_from = models.DateTimeField(help_text="Deals before this time are history.")
    registered_at = models.DateTimeField(null=True, blank=True)
    consecutive_errors = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(
        null=True, blank=True, help_text="When a sweep last confirmed the snapshot (to a minute)."
    )
    last_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["login"]
        constraints = [
            models.UniqueConstraint(fields=["server", "login"], name="monitor_one_row_per_login")
        ]
        indexes = [models.Index(fields=["status", "login"], name="monitor_sweep_order")]

    def __str__(self) -> str:
        return f"{self.login} ({self.status})"


class AccountEvent(models.Model):
    """Something the monitor saw on an account, recorded before anything acts on it.

    Deal events are unique on (server, ticket): seeing a deal twice records it once. A
    pending event is dispatched to the bonus engine (through `accounts.signals`), retried
    with backoff when that fails, and done when it succeeds.
    """

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        DRAWDOWN = "drawdown", "Drawdown"
        TRADE = "trade", "Closed trade"
        REGISTRATION = "registration", "Registration"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"

    server = models.CharField(max_length=64)
    login = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    ticket = models.BigIntegerField(null=True, blank=True, help_text="The MT5 deal, if any.")
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    balance_before = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    lots = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    equity = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    credit = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    comment = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["server", "ticket"],
                condition=models.Q(ticket__isnull=False),
                name="event_one_per_deal",
            ),
            models.UniqueConstraint(
                fields=["server", "login"],
                condition=models.Q(kind="registration"),
                name="event_one_registration",
            ),
        ]
        indexes = [
            models.Index(
                fields=["login", "id"],
                condition=models.Q(status__in=["pending", "processing"]),
                name="event_open_by_login",
            ),
            models.Index(fields=["login", "-occurred_at"], name="event_by_login"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.login} ({self.status})"
