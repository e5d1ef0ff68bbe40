"""Telegram Bot API: credential delivery messages out, signal channel posts in."""

from gateways.loading import load_gateway

from .protocol import TelegramGateway
from .types import TelegramUpdate

__all__ = ["TelegramGateway", "TelegramUpdate", "get_telegram_gateway"]


def get_telegram_gateway() -> TelegramGateway:
    """Return the Telegram gateway named in `settings.TELEGRAM_GATEWAY`."""
    return load_gateway("TELEGRAM_GATEWAY")
