"""State of the simulated MT5 server: accounts, their deal history and open positions."""

from django.db import models
from django.utils import timezone

from gateways.mt5.types import DealAction, DealEntry, PositionSide

__all__ = ["SimulatedMT5Account", "SimulatedMT5Deal", "SimulatedMT5Position"]


class SimulatedMT5Account(models.Model):
    """A client account on one of the simulated MT5 servers (`server`: the live one, or the
    broker's demo server the demo pool provisions on). Each server sees only its own accounts;
    logins stay unique across both (each server hands out its own range).

    Balance and credit move only through deals (the gateway updates them with F() under a row
    lock); equity is not stored but computed from balance, credit and open positions.
    """

    class Server(models.TextChoices):
        LIVE = "live", "Live server"
        DEMO = "demo", "Demo server"

    # MT5 cuts a comment to 31 characters (32 with the terminator), as for deals.
    COMMENT_MAX = 31

    login = models.BigIntegerField(primary_key=True)
    server = models.CharField(max_length=8, choices=Server.choices, default=Server.LIVE)
    name = models.CharField(max_length=128)
    group = models.CharField(max_length=64, db_index=True)
    country = models.CharField(max_length=64, blank=True)
    lead_source = models.CharField(max_length=64, blank=True)
    balance = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    credit = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    leverage = models.PositiveIntegerField(default=100)
    currency = models.CharField(max_length=3, default="USD")
    enabled = models.BooleanField(default=True)
    password = models.CharField(max_length=128, help_text="Hashed, never plaintext.")
    comment = models.CharField(max_length=COMMENT_MAX, blank=True)
    registered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["login"]
        indexes = [models.Index(fields=["server", "group"], name="sim_mt5_account_server_group")]
        verbose_name = "simulated MT5 account"
        verbose_name_plural = "simulated MT5 server: accounts"

    def __str__(self) -> str:
        return f"{self.login} {self.name}"


class SimulatedMT5Deal(models.Model):
    """One deal in the simulated server's history. Tickets only grow.

    Deals of one account are created under that account's row lock, so per login a higher
    ticket is also committed later: a reader's per-login cursor never skips a deal.
    """

    ticket = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(
        SimulatedMT5Account, on_delete=models.CASCADE, related_name="deals", db_column="login"
    )
    time = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=16, choices=DealAction.choices)
    entry = models.CharField(max_length=8, choices=DealEntry.choices, default=DealEntry.NONE)
    symbol = models.CharField(max_length=32, blank=True)
    volume = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    price = models.DecimalField(max_digits=18, decimal_places=5, default=0)
    profit = models.DecimalField(
        max_digits=18, decimal_places=2, default=0, help_text="The amount, for money operations."
    )
    comment = models.CharField(max_length=32, blank=True)
    position_id = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["ticket"]
        indexes = [models.Index(fields=["account", "comment"], name="sim_mt5_deal_comment")]
        verbose_name = "simulated MT5 deal"
        verbose_name_plural = "simulated MT5 server: deals"

    def __str__(self) -> str:
        return f"#{self.ticket} {self.action} {self.profit} ({self.account_id})"


class SimulatedMT5Position(models.Model):
    """An open position on the simulated server; closing it deletes it and books an OUT deal."""

    ticket = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(
        SimulatedMT5Account, on_delete=models.CASCADE, related_name="positions", db_column="login"
    )
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4, choices=PositionSide.choices)
    volume = models.DecimalField(max_digits=12, decimal_places=2)
    open_price = models.DecimalField(max_digits=18, decimal_places=5)
    profit = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    opened_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ticket"]
        verbose_name = "simulated MT5 position"
        verbose_name_plural = "simulated MT5 server: positions"

    def __str__(self) -> str:
        return f"#{self.ticket} {self.side} {self.volume} {self.symbol} ({self.account_id})"
