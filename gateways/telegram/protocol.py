"""The interface of the Telegram Bot API, as far as Brokerdesk uses it."""

from typing import Protocol

from .types import TelegramUpdate


class TelegramGateway(Protocol):
    """Sends messages as the bot and reads its updates (long-polling style, by offset).

    Errors: `PermanentGatewayError` when Telegram refuses (chat not found, bot blocked, bad
    text), `TransientGatewayError` when it is down or rate-limits (429), and
    `UnknownOutcomeError` when a send got no answer (it may have been delivered).
    """

    def ping(self) -> None:
        """Raise a `GatewayError` unless the API answers for this bot."""

    def send_message(
        self,
        *,
        chat_id: str,
        text: str,
        disable_link_preview: bool = False,
        protect_content: bool = False,
    ) -> int:
        """Send `text` to `chat_id` (an id or "@channelname"); return the message id.

        `disable_link_preview`: Telegram draws no preview of links in the text (so it does not
        fetch them); `protect_content`: the message cannot be forwarded or saved.
        """

    def get_updates(self, *, offset: int | None = None, limit: int = 100) -> list[TelegramUpdate]:
        """Return pending updates from `offset` on, oldest first.

        As in Telegram, asking with an offset confirms (forgets) every update below it.
        """
