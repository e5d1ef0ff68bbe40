"""State of the simulated demo provisioning server."""

from django.db import models
from django.utils import timezone

__all__ = ["SimulatedDemoAccount", "WebApiDemoCreation"]


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


class WebApiDemoCreation(models.Model):
    """One demo account creation the Web API demo gateway sent to the demo server.

    `user/add` takes no idempotency key. The gateway writes this row before its first
    `user/add` for an idempotency id: no row means no earlier call can have made an account, so
    the first call needs no lookup; a row with `login` set is a replay (one `user/get_batch`);
    a row without is an earlier call whose outcome is unknown, resolved by looking the
    account up by its marker (the Comment field) before any new `user/add`, and no new one
    while the last (`add_sent_at`) may still be made by a slow server; `deposit` the same
    for the initial balance (else looked up by the deal's comment before any new posting).
    """

    idempotency_id = models.CharField(max_length=64, unique=True)
    login = models.BigIntegerField(null=True, blank=True)
    deposit = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The initial balance, once the demo server booked it (null: not known yet).",
    )
    add_sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When user/add was last sent (or its answer given up on): an unseen "
        "account may still be made until 2 x DEMO_REQUEST_TIMEOUT_SECONDS after it.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "MT5 Web API demo creation"
        verbose_name_plural = "MT5 Web API demo creations"

    def __str__(self) -> str:
        return f"{self.idempotency_id} -> {self.login or '?'}"
