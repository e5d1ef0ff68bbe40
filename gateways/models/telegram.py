"""State of the simulated Telegram Bot API: what the bot sent, and what it will receive."""

from django.db import models
from django.utils import timezone

__all__ = ["SimulatedTelegramMessage", "SimulatedTelegramUpdate"]


class SimulatedTelegramMessage(models.Model):
    """A message the bot sent (the outbox tests and staff read, like Django's mail.outbox).

    The primary key is the message id the gateway returns.
    """

    chat_id = models.CharField(max_length=64)
    text = models.TextField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "Simulated Telegram: sent message"
        verbose_name_plural = "Simulated Telegram: sent messages"

    def __str__(self) -> str:
        return f"#{self.pk} to {self.chat_id}"


class SimulatedTelegramUpdate(models.Model):
    """An update waiting for the bot: staff add one to simulate a channel post or a message.

    The primary key is the update id. Like Telegram, reading with an offset confirms the
    updates below it; they stay here, marked, for the record.
    """

    chat_id = models.CharField(max_length=64, help_text='Numeric id, e.g. "-1002526280469".')
    chat_username = models.CharField(
        max_length=64, blank=True, help_text="Channel or user name, without the @."
    )
    text = models.TextField()
    date = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "Simulated Telegram: incoming update"
        verbose_name_plural = "Simulated Telegram: incoming updates"

    def __str__(self) -> str:
        return f"#{self.pk} from {self.chat_username or self.chat_id}"
