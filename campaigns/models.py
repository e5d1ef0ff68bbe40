"""What staff configure: bonus campaigns, their lifecycle, targeting and triggers."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Campaign(models.Model):
    """A promotion: which accounts get what bonus, on which trigger, between which dates.

    Money fields are Decimal; lists (groups, countries, agent codes) are JSON lists of strings,
    empty meaning "all". Status moves only along `TRANSITIONS` (campaigns.services).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ENDED = "ended", "Ended"
        ARCHIVED = "archived", "Archived"

    class BonusType(models.TextChoices):
        A = "A", "Type A: dynamic leverage"
        B = "B", "Type B: fixed leverage"
        C = "C", "Type C: convertible"

    class TriggerType(models.TextChoices):
        AUTO_DEPOSIT = "auto_deposit", "Auto on deposit"
        PROMO_CODE = "promo_code", "Promo code"
        REGISTRATION = "registration", "On registration"
        AGENT_CODE = "agent_code", "Agent code"

    class Stacking(models.TextChoices):
        """Whether this campaign's bonus may share one deposit with other campaigns' bonuses."""

        EXCLUSIVE = "exclusive", "Exclusive: the only bonus on a deposit"
        STACKABLE = "stackable", "Stackable: with other stackable campaigns"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    bonus_type = models.CharField(max_length=1, choices=BonusType.choices)
    percentage = models.DecimalField(
        max_digits=7, decimal_places=2, help_text="Bonus as % of the deposit, in (0, 1000]."
    )
    max_bonus = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    min_deposit = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    max_deposit = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    trigger_type = models.CharField(
        max_length=16, choices=TriggerType.choices, default=TriggerType.AUTO_DEPOSIT
    )
    # Nullable by contract; NULL (not "") keeps the live-codes unique index simple.
    promo_code = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    agent_codes = models.JSONField(default=list, blank=True)
    target_groups = models.JSONField(default=list, blank=True)
    target_countries = models.JSONField(default=list, blank=True)
    one_per_account = models.BooleanField(default=True)
    max_concurrent = models.PositiveIntegerField(
        null=True, blank=True, help_text="Active bonuses per account; empty means no limit."
    )
    bonus_expiry_days = models.PositiveIntegerField(null=True, blank=True)
    convert_per_lot = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Type C: money converted from credit to balance per 1.00 lot traded.",
    )
    fixed_amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Registration bonuses: the amount granted.",
    )
    # One deposit fires campaigns in priority order (highest first, the older campaign on a
    # tie): the first eligible one always fires; after it, only stackable campaigns join while
    # every bonus already on the deposit is stackable too. Exclusive is the safe default.
    stacking = models.CharField(
        max_length=16,
        choices=Stacking.choices,
        default=Stacking.EXCLUSIVE,
        help_text="Exclusive: no other campaign's bonus on the same deposit. Stackable: "
        "combines with other stackable campaigns.",
    )
    priority = models.IntegerField(
        default=0,
        help_text="0 to 1000; on one deposit the highest fires first (a tie: the older one).",
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                Lower("promo_code"),
                condition=Q(promo_code__isnull=False) & ~Q(status="archived"),
                name="campaign_promo_code_unique_live",
            ),
            models.CheckConstraint(
                condition=Q(percentage__gt=0) & Q(percentage__lte=1000),
                name="campaign_percentage_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_bonus_type_display()}, {self.status})"


class StackingSkip(models.Model):
    """A campaign that a deposit qualified for but did not fire, because another campaign's
    bonus took that deposit and one of the two is exclusive (`Campaign.stacking`).

    Written by the bonus engine's deposit trigger, one row per campaign and deposit deal
    (unique: a deposit seen twice records its skip once); the reports count them.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="stacking_skips")
    taken_by = models.ForeignKey(
        Campaign,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The campaign whose bonus the deposit gave first.",
    )
    login = models.BigIntegerField()
    deal_id = models.BigIntegerField()
    deposit_amount = models.DecimalField(max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "login", "deal_id"], name="stacking_skip_once_per_deal"
            )
        ]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} skipped on deal {self.deal_id} of {self.login}"


class MT5Scan(models.Model):
    """The groups and countries last read from the MT5 server, for campaign forms.

    One row (pk=1), refreshed by "Scan MT5"; kept in the database so every process and a
    restart see the same choices.
    """

    groups = models.JSONField(default=list)
    countries = models.JSONField(default=list)
    scanned_at = models.DateTimeField()

    class Meta:
        verbose_name = "MT5 scan"

    def __str__(self) -> str:
        return f"{len(self.groups)} groups, {len(self.countries)} countries at {self.scanned_at}"
