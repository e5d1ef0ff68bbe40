"""The simulated Telegram Bot API: an outbox and an inbox in the database."""

import re

from django.utils import timezone

from gateways.errors import PermanentGatewayError
from gateways.models import SimulatedTelegramMessage, SimulatedTelegramUpdate
from gateways.simulation import apply_knobs

from .types import TelegramUpdate

GATEWAY = "telegram"
MAX_TEXT = 4096  # Telegram's limit for one message
# What Telegram can resolve: a numeric chat id, or a public "@name" (5 to 32 characters).
CHAT_ID = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")


class SimulatedTelegramGateway:
    """Telegram backed by `SimulatedTelegramMessage` (sent) and `SimulatedTelegramUpdate`
    (received, added by staff in the admin)."""

    def ping(self) -> None:
        """Answer unless the knobs say otherwise."""
        apply_knobs(GATEWAY)

    def send_message(
        self,
        *,
        chat_id: str,
        text: str,
        disable_link_preview: bool = False,
        protect_content: bool = False,
    ) -> int:
        """Record the message in the outbox and return its id (the flags change nothing here:
        the simulated server draws no previews and has no one to forward to)."""
        apply_knobs(GATEWAY)
        if not CHAT_ID.match(str(chat_id)):
            raise PermanentGatewayError("Bad Request: chat not found", gateway=GATEWAY)
        if not text.strip() or len(text) > MAX_TEXT:
            raise PermanentGatewayError(
                f"Bad Request: text must have 1 to {MAX_TEXT} characters", gateway=GATEWAY
            )
        return SimulatedTelegramMessage.objects.create(chat_id=str(chat_id), text=text).pk

    def get_updates(self, *, offset: int | None = None, limit: int = 100) -> list[TelegramUpdate]:
        """Return unconfirmed updates from `offset` on, confirming those below it."""
        apply_knobs(GATEWAY)
        pending = SimulatedTelegramUpdate.objects.filter(confirmed_at=None)
        if offset is not None:
            pending.filter(pk__lt=offset).update(confirmed_at=timezone.now())
            pending = pending.filter(pk__gte=offset)
        limit = max(1, min(limit, 100))  # Telegram clamps the limit the same way
        return [
            TelegramUpdate(
                update_id=row.pk,
                chat_id=row.chat_id,
                chat_username=row.chat_username,
                text=row.text,
                date=row.date,
            )
            for row in pending.order_by("pk")[:limit]
        ]
