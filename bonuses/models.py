"""The bonus engine's state: bonuses, the credit ledger of MT5 writes, and what was seen."""

import secrets
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from campaigns.models import Campaign
from core.money import ZERO, cents_down


class Bonus(models.Model):
    """Credit granted to one MT5 account under one campaign.

    `pending` until its credit write is confirmed on the server (then `active`), `failed` if the
    server refused it. `credit_remaining` is the credit this bonus still holds on the server.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (credit being posted)"
        ACTIVE = "active", "Active"
        CONVERTED = "converted", "Converted"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed (server refused the credit)"

    class Trigger(models.TextChoices):
        AUTO_DEPOSIT = "auto_deposit", "Auto on deposit"
        PROMO_CODE = "promo_code", "Promo code"
        REGISTRATION = "registration", "Registration"
        AGENT_CODE = "agent_code", "Agent code"
        MANUAL = "manual", "Manual"

    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.PROTECT, related_name="bonuses"
    )
    login = models.BigIntegerField(db_index=True)
    bonus_type = models.CharField(max_length=1, choices=Campaign.BonusType.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    credit_remaining = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    deposit_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    deposit_deal_id = models.BigIntegerField(null=True, blank=True)
    original_leverage = models.PositiveIntegerField(null=True, blank=True)
    adjusted_leverage = models.PositiveIntegerField(null=True, blank=True)
    leverage_restored_at = models.DateTimeField(null=True, blank=True)
    lots_required = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    lots_traded = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    converted_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    override_reason = models.TextField(blank=True)
    overridden_failures = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "bonuses"
        constraints = [
            # One bonus per campaign per deposit deal: the same deal seen twice (or assigned
            # by hand after the engine used it) grants once. A failed bonus gave nothing, so
            # its deal may be used again.
            models.UniqueConstraint(
                fields=["campaign", "login", "deposit_deal_id"],
                condition=Q(deposit_deal_id__isnull=False) & ~Q(status="failed"),
                name="bonus_once_per_campaign_deal",
            ),
            models.CheckConstraint(
                condition=Q(credit_remaining__gte=0), name="bonus_credit_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["login", "status"], name="bonus_login_status")]

    def __str__(self) -> str:
        return f"Bonus #{self.pk} {self.bonus_type} {self.amount} on {self.login} ({self.status})"

    @property
    def progress_pct(self):
        """Type C: how much of the bonus has been converted, in percent (0-100)."""
        if not self.amount:
            return ZERO
        pct = self.converted_amount * 100 / self.amount
        return cents_down(min(pct, Decimal(100)))


class DepositSeen(models.Model):
    """A deposit deal the engine has taken in: unique, so a deal processed twice grants once."""

    login = models.BigIntegerField()
    deal_id = models.BigIntegerField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    source = models.CharField(max_length=32, help_text="api, monitor, admin, ...")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["login", "deal_id"], name="deposit_seen_once")
        ]

    def __str__(self) -> str:
        return f"deposit {self.deal_id} on {self.login}: {self.amount}"


class WithdrawalSeen(models.Model):
    """A withdrawal deal the engine has taken in: unique, so a deal seen twice cuts credit once."""

    login = models.BigIntegerField()
    deal_id = models.BigIntegerField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    balance_before = models.DecimalField(max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["login", "deal_id"], name="withdrawal_seen_once")
        ]

    def __str__(self) -> str:
        return f"withdrawal {self.deal_id} on {self.login}: {self.amount}"


class CreditIntent(models.Model):
    """One write to MT5, recorded before it is sent: the credit ledger.

    pending -> done (with the server's deal id) | failed | unknown (sent, no answer: look the
    operation id up in the deal history before anything is retried). The operation id rides
    in the deal's comment. Writes of one `operation` (a conversion's credit-out and
    balance-in) are completed together.
    """

    class Kind(models.TextChoices):
        CREDIT_IN = "credit_in", "Credit in"
        CREDIT_OUT = "credit_out", "Credit out"
        BALANCE_IN = "balance_in", "Balance in (conversion)"
        SET_LEVERAGE = "set_leverage", "Set leverage"
        CLOSE_POSITIONS = "close_positions", "Close positions"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown outcome"

    op_id = models.CharField(max_length=32, unique=True, editable=False)
    operation = models.UUIDField(default=uuid.uuid4, db_index=True, editable=False)
    login = models.BigIntegerField(db_index=True)
    bonus = models.ForeignKey(
        Bonus, null=True, blank=True, on_delete=models.PROTECT, related_name="intents"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    leverage = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    deal_id = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # A sender claims the intent until this time (a conditional UPDATE), so the service that
    # made it and the beat resolver never send it at once; a crashed sender's claim runs out.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    reason = models.CharField(max_length=64, blank=True, help_text="grant, cancel, withdrawal...")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "credit ledger entry"
        verbose_name_plural = "credit ledger"

    def __str__(self) -> str:
        return f"{self.kind} {self.amount or self.leverage or ''} on {self.login}: {self.status}"

    @staticmethod
    def new_op_id() -> str:
        """`bd` and 20 hex characters (80 random bits): 22 characters, well inside the 31 a
        MT5 deal comment keeps."""
        return "bd" + secrets.token_hex(10)


class Conversion(models.Model):
    """A closed trade deal that converted Type C credit: unique, so a deal converts once."""

    bonus = models.ForeignKey(Bonus, on_delete=models.PROTECT, related_name="conversions")
    deal_ticket = models.BigIntegerField()
    lots = models.DecimalField(max_digits=14, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    operation = models.UUIDField(help_text="The credit-out / balance-in pair in the ledger.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bonus", "deal_ticket"], name="conversion_once")
        ]

    def __str__(self) -> str:
        return f"deal {self.deal_ticket}: {self.lots} lots -> {self.amount}"


class LeverageState(models.Model):
    """Type A's leverage stack for one account: the leverage to restore, and what we last set.

    `original_leverage` is the account's leverage before its first Type A bonus; it is
    restored only when no Type A credit remains, and only if the server still shows
    `applied_leverage` (a dealer's manual change is recorded and left alone).
    """

    login = models.BigIntegerField(primary_key=True)
    original_leverage = models.PositiveIntegerField()
    applied_leverage = models.PositiveIntegerField()
    override_leverage = models.PositiveIntegerField(
        null=True, blank=True, help_text="Set by a Super Admin; wins over the formula."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.login}: 1:{self.original_leverage} -> 1:{self.applied_leverage}"


class BonusApproval(models.Model):
    """A manual assign above its requester's limit, waiting for a second person (four eyes).

    pending -> approved (the bonus was granted, `bonus`) | rejected | failed (approved, but the
    grant was refused when it was re-run: the account or the campaign changed, the deal was
    used meanwhile; `failure_code` says why). Decided by a Super Admin who is not the
    requester, with one conditional UPDATE, so two decisions at once decide once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending approval"
        APPROVED = "approved", "Approved (granted)"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Approved, but the grant was refused"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    login = models.BigIntegerField(db_index=True)
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.PROTECT, related_name="bonus_approvals"
    )
    deposit_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    deal_id = models.BigIntegerField(null=True, blank=True)
    override_eligibility = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    limit_reason = models.CharField(max_length=200, help_text="Which limit the amount exceeds.")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_detail = models.TextField(blank=True)
    bonus = models.OneToOneField(
        Bonus, null=True, blank=True, on_delete=models.PROTECT, related_name="approval"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("approve_bonusapproval", "Can approve or reject a bonus approval")]
        constraints = [
            # One open request per campaign and deposit deal.
            models.UniqueConstraint(
                fields=["campaign", "login", "deal_id"],
                condition=Q(deal_id__isnull=False, status="pending"),
                name="bonus_approval_pending_once_per_deal",
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="bonus_approval_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Approval #{self.pk}: {self.amount} on {self.login} ({self.status})"
