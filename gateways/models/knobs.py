from django.db import models


class SimulatorKnobs(models.Model):
    """Latency and error-rate knobs of one simulated server, editable in the admin."""

    class Server(models.TextChoices):
        MT5 = "mt5", "MT5 manager"
        DEMO = "demo", "Demo provisioning"
        BROKER = "broker", "Broker trading"
        TELEGRAM = "telegram", "Telegram Bot API"
        MT5_WEBAPI = "mt5_webapi", "MT5 Web API stand-in"
        MT5_WEBAPI_DEMO = "mt5_webapi_demo", "MT5 Web API stand-in: demo server"

    class FaultRetcode(models.IntegerChoices):
        """What the Web API stand-in answers when `error_rate` strikes."""

        PERMISSIONS = 8, "8 Not enough permissions"
        TIMEOUT = 9, "9 Operation timeout"
        NOT_FOUND = 13, "13 Not found"
        NO_MONEY = 10019, "10019 Not enough money"

    server = models.CharField(max_length=16, choices=Server.choices, unique=True)
    latency_ms = models.PositiveIntegerField(
        default=0, help_text="Added to every call, to see how the product behaves when slow."
    )
    error_rate = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=0,
        help_text="Share of calls (0 to 1) that fail with a transient error "
        "(the Web API stand-in: answered with the fault retcode, nothing done).",
    )
    fault_retcode = models.PositiveIntegerField(
        choices=FaultRetcode.choices,
        default=FaultRetcode.TIMEOUT,
        help_text="Web API stand-in only: the retcode `error_rate` answers with.",
    )
    forbidden_rate = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=0,
        help_text="Web API stand-in only: share of calls answered HTTP 403, the session "
        "forgotten (the client must shake hands again).",
    )
    drop_rate = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=0,
        help_text="Web API stand-in only: share of calls whose connection is dropped after "
        "the work is done, unanswered (an unknown outcome for writes).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "simulator knobs"
        verbose_name_plural = "simulator knobs"

    def __str__(self) -> str:
        return f"{self.get_server_display()}: {self.latency_ms} ms, {self.error_rate} errors"
