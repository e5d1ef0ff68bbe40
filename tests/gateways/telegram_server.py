"""A stand-in Telegram Bot API: checks the token in the path, keeps sent messages and pending
updates in memory, and answers errors in Telegram's own shape."""

import re
import threading
from typing import Any

from django.utils import timezone

CHAT_ID = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
PATH = re.compile(r"^/bot(?P<token>[^/]*)/(?P<method>\w+)$")


def _error(code: int, description: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return code, {"ok": False, "error_code": code, "description": description, **extra}


class TelegramServer:
    """Telegram's behaviour as the contract tests need it, state behind one lock."""

    def __init__(self, *, token: str):
        self.token = token
        self.lock = threading.Lock()
        self.sent: list[tuple[str, str]] = []  # (chat_id, text)
        self.updates: list[dict[str, Any]] = []
        self.retry_after: int | None = None  # answer 429 to every call while set

    def post_update(self, *, chat_id: str, chat_username: str, text: str) -> int:
        """Queue a channel post for the bot; return its update id."""
        with self.lock:
            update_id = 1000 + len(self.updates) + 1
            chat = {"id": int(chat_id), "type": "channel", "username": chat_username}
            post = {
                "message_id": update_id,
                "chat": chat,
                "text": text,
                "date": int(timezone.now().timestamp()),
            }
            self.updates.append({"update_id": update_id, "channel_post": post})
            return update_id

    def handle(self, method, path, query, headers, body) -> tuple[int, Any]:
        match = PATH.match(path)
        if not match or match["token"] != self.token:
            return _error(401, "Unauthorized")
        with self.lock:
            if self.retry_after is not None:
                return _error(
                    429,
                    f"Too Many Requests: retry after {self.retry_after}",
                    parameters={"retry_after": self.retry_after},
                )
            return self._route(match["method"], query, body or {})

    def _route(self, name: str, query: dict[str, list[str]], body: dict[str, Any]):
        if name == "getMe":
            return 200, {"ok": True, "result": {"id": 42, "is_bot": True, "username": "desk_bot"}}
        if name == "sendMessage":
            chat_id = str(body.get("chat_id", ""))
            if not CHAT_ID.match(chat_id):
                return _error(400, "Bad Request: chat not found")
            self.sent.append((chat_id, body.get("text", "")))
            return 200, {"ok": True, "result": {"message_id": len(self.sent), "text": body["text"]}}
        if name == "getUpdates":
            offset = int(query["offset"][0]) if "offset" in query else None
            if offset is not None:  # confirms, so Telegram forgets, everything below it
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            limit = int(query.get("limit", ["100"])[0])
            return 200, {"ok": True, "result": self.updates[:limit]}
        return _error(404, "Not Found")
