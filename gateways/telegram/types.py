"""What the Telegram Bot API answers, reduced to what Brokerdesk reads."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TelegramUpdate:
    """One incoming update: a message to the bot or a post in a channel it is in.

    Updates of other kinds (edits, membership changes) come with empty `text`, so that the
    caller's next offset still moves past them.
    """

    update_id: int
    chat_id: str
    chat_username: str
    text: str
    date: datetime
