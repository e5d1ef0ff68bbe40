from django.db import models


class SimulatorKnobs(models.Model):
    """Latency and error-rate knobs of one simulated server, editable in the admin."""

    class Server(models.TextChoices):
        MT5 = "mt5", "MT5 manager"
        DEMO = "demo", "Demo provisioning"
        BROKER = "broker", "Broker trading"
        TELEGRAM = "telegram", "Telegram Bot API"

    server = models.CharField(max_length=16, choices=Server.choices, unique=True)
    latency_ms = models.PositiveIntegerField(
        default=0, help_text="Added to every call, to see how the product behaves when slow."
    )
    error_rate = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=0,
        help_text="Share of calls (0 to 1) that fail with a transient error.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "simulator knobs"
        verbose_name_plural = "simulator knobs"

    def __str__(self) -> str:
        return f"{self.get_server_display()}: {self.latency_ms} ms, {self.error_rate} errors"
