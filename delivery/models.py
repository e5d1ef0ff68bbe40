"""Credential delivery: one-time links to a secret, and the log of every request to them."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .fields import EncryptedTextField


class Delivery(models.Model):
    """One secret handed over once: a one-time link `/d/<token>`, sent by one channel.

    Only the SHA-256 of the token is kept. The payload is sealed with a key derived from the
    token (HKDF), then encrypted under the keyring and bound to this row: neither the database
    alone nor the database with the keyring opens it without the link. Between creation and
    the channel's send the link itself waits in `pending_link` (keyring-encrypted); it is
    wiped once sent or failed. The payload is wiped when the link is revealed, expires, fails
    or is superseded; the row and its attempts stay.

    pending -> sent (the channel took it; api and qr: handed to the caller at once) | failed;
    pending/sent -> revealed (one conditional UPDATE: exactly one reveal wins) | expired;
    pending/sent/failed -> superseded (a resend for the same purpose).
    """

    class Method(models.TextChoices):
        TELEGRAM = "telegram", "Telegram"
        EMAIL = "email", "Email"
        API = "api", "API (link returned to the caller)"
        QR = "qr", "QR code (returned to the caller)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (not sent yet)"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (the channel refused it)"
        REVEALED = "revealed", "Revealed"
        EXPIRED = "expired", "Expired"
        SUPERSEDED = "superseded", "Superseded (resent)"

    purpose = models.CharField(
        max_length=200, db_index=True, help_text='What it is for, e.g. "demo_pool.account:42".'
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    method = models.CharField(max_length=16, choices=Method.choices)
    contact = models.CharField(max_length=254, blank=True, help_text="Chat id or email address.")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    payload = EncryptedTextField(bind_to="token_hash", null=True)
    pending_link = EncryptedTextField(bind_to="token_hash", null=True)
    send_attempts = models.PositiveIntegerField(
        default=0, help_text="Tries of the channel (Telegram, email)."
    )
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    revealed_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "expires_at"], name="delivery_status_expiry")]

    def __str__(self) -> str:
        return f"Delivery #{self.pk} {self.method} ({self.status})"


class DeliveryAttempt(models.Model):
    """One request to a one-time link (a view or a reveal) and how it was answered.

    The log outlives the secret. `delivery` is empty for a token that matched nothing.
    `is_preview_bot` marks user agents of link-preview fetchers and crawlers.
    """

    class Action(models.TextChoices):
        VIEW = "view", "View (GET)"
        REVEAL = "reveal", "Reveal (POST)"

    class Outcome(models.TextChoices):
        VIEWED = "viewed", "Viewed (nothing revealed)"
        REVEALED = "revealed", "Revealed"
        REFUSED_USED = "refused_used", "Refused: already revealed"
        REFUSED_EXPIRED = "refused_expired", "Refused: expired"
        REFUSED_SUPERSEDED = "refused_superseded", "Refused: superseded"
        REFUSED_FAILED = "refused_failed", "Refused: never delivered"
        NOT_FOUND = "not_found", "Not found"
        ERROR = "error", "Error (could not decrypt)"

    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.CASCADE, related_name="attempts"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    is_preview_bot = models.BooleanField(default=False)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} at {self.at:%Y-%m-%d %H:%M:%S}"
