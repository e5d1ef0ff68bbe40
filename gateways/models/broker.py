"""State of the simulated broker trading server."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

__all__ = ["SimulatedBrokerAccount", "SimulatedBrokerTrade"]

_SHARE = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))]


class SimulatedBrokerAccount(models.Model):
    """A client's account on the simulated broker, keyed by (email, account type).

    Created on first use with the password it was first used with (kept hashed). The rates
    decide the outcome of the trades opened on it, so staff can make an account lucky.
    """

    class AccountType(models.TextChoices):
        DEMO = "demo", "Demo"
        REAL = "real", "Real"

    email = models.CharField(max_length=254)
    account_type = models.CharField(max_length=4, choices=AccountType.choices)
    password_hash = models.CharField(max_length=128)
    balance = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    win_rate = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.50"),
        validators=_SHARE,
        help_text="Share of trades (0 to 1) that win.",
    )
    draw_rate = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=_SHARE,
        help_text="Share of trades (0 to 1) that end in a draw (stake returned).",
    )
    payout = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=Decimal("0.80"),
        validators=_SHARE,
        help_text="Profit per unit staked on a win, fixed when a trade opens.",
    )
    trades_opened = models.PositiveIntegerField(
        default=0, help_text="Trades opened so far: the n in the outcome of the n-th trade."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "Simulated broker: account"
        verbose_name_plural = "Simulated broker: accounts"
        constraints = [
            models.UniqueConstraint(
                fields=["email", "account_type"], name="sim_broker_account_unique_login"
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.account_type})"


class SimulatedBrokerTrade(models.Model):
    """A trade on the simulated broker. The outcome is drawn when it opens and only shown
    through the gateway once it has expired; settling credits the account once."""

    class Direction(models.TextChoices):
        CALL = "call", "Call"
        PUT = "put", "Put"

    class Outcome(models.TextChoices):
        WIN = "win", "Win"
        LOSS = "loss", "Loss"
        DRAW = "draw", "Draw"

    account = models.ForeignKey(
        SimulatedBrokerAccount, on_delete=models.CASCADE, related_name="trades"
    )
    client_order_id = models.CharField(max_length=64)
    asset = models.CharField(max_length=32)
    direction = models.CharField(max_length=4, choices=Direction.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    payout = models.DecimalField(max_digits=4, decimal_places=2)
    outcome = models.CharField(max_length=4, choices=Outcome.choices)
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Simulated broker: trade"
        verbose_name_plural = "Simulated broker: trades"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "client_order_id"], name="sim_broker_trade_unique_order"
            )
        ]
        indexes = [models.Index(fields=["account", "settled_at", "expires_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.direction} {self.asset} {self.amount}"
