"""People and what they hold: users, integration API keys, and the audit trail."""

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager):
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
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

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

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditRefused(Exception):
    """Raised by any attempt to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditRefused("Audit events cannot be changed.")

    def delete(self):
        raise AuditRefused("Audit events cannot be deleted.")

    # bulk_update goes through update(); bulk_create would skip the chain.
    def bulk_create(self, *args, **kwargs):
        raise AuditRefused("Audit events are written one by one through audit_record().")


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
