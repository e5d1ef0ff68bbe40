"""State of the simulated demo provisioning server."""

from django.db import models
from django.utils import timezone

__all__ = ["SimulatedDemoAccount"]


class SimulatedDemoAccount(models.Model):
    """A demo account on the simulated demo provisioning server.

    The login is the primary key plus an offset: unique without a second write or a race.
    Only a hash of the password is kept; see `SimulatedDemoGateway` for how a retried create
    still returns the first password.
    """

    LOGIN_OFFSET = 70_000_000

    idempotency_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    group = models.CharField(max_length=64)
    balance = models.DecimalField(max_digits=14, decimal_places=2)
    leverage = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    password_hash = models.CharField(max_length=128)
    enabled = models.BooleanField(default=True)
    connected = models.BooleanField(
        default=False, help_text="Tick to simulate a terminal logged in to this account."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "Simulated demo provisioning: account"
        verbose_name_plural = "Simulated demo provisioning: accounts"

    def __str__(self) -> str:
        return f"{self.login} {self.name}"

    @property
    def login(self) -> int:
        """The MT5 login the server hands out."""
        return self.pk + self.LOGIN_OFFSET
