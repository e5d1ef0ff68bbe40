"""The real Telegram Bot API client.

The bot token sits in the URL path, so every call passes `label=` to `gateways.http.request`
(errors and logs name the method, never the URL) and drops the underlying `requests`
exception from the chain (its text holds the URL, and tracebacks print the chain).
"""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from gateways.errors import GatewayError, PermanentGatewayError, TransientGatewayError
from gateways.http import request

from .types import TelegramUpdate

GATEWAY = "telegram"


class HttpTelegramGateway:
    """Telegram through `{TELEGRAM_API_URL}/bot{TELEGRAM_BOT_TOKEN}/<method>`."""

    def ping(self) -> None:
        """Raise a `GatewayError` unless the API knows this bot (getMe)."""
        self._call("GET", "getMe", retries=settings.GATEWAY_MAX_RETRIES)

    def send_message(
        self,
        *,
        chat_id: str,
        text: str,
        disable_link_preview: bool = False,
        protect_content: bool = False,
    ) -> int:
        """Send `text` to `chat_id`; return Telegram's message id."""
        body: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if disable_link_preview:
            body["link_preview_options"] = {"is_disabled": True}
        if protect_content:
            body["protect_content"] = True
        result = self._call(
            "POST",
            "sendMessage",
            json=body,
            # Not idempotent: a resend after a lost answer could deliver twice, so a timeout is
            # an UnknownOutcomeError and nothing is retried here. A 429 carries `retry_after`
            # (often tens of seconds): the caller's task retry with backoff is the right wait.
            idempotent=False,
            retries=0,
        )
        return int(result["message_id"])

    def get_updates(self, *, offset: int | None = None, limit: int = 100) -> list[TelegramUpdate]:
        """Return pending updates from `offset` on (short poll: Telegram answers at once)."""
        params: dict[str, Any] = {"limit": limit, "timeout": 0}
        if offset is not None:
            params["offset"] = offset
        result = self._call(
            "GET", "getUpdates", params=params, retries=settings.GATEWAY_MAX_RETRIES
        )
        return [_update(raw) for raw in result or []]

    def _call(self, http_method: str, method: str, *, retries: int, **kwargs: Any) -> Any:
        url = f"{settings.TELEGRAM_API_URL.rstrip('/')}/bot{settings.TELEGRAM_BOT_TOKEN}/{method}"
        try:
            response = request(
                http_method,
                url,
                timeout=settings.TELEGRAM_REQUEST_TIMEOUT_SECONDS,
                gateway=GATEWAY,
                retries=retries,
                backoff=settings.GATEWAY_BACKOFF_SECONDS,
                label=method,
                **kwargs,
            )
        except GatewayError as exc:
            # The chained `requests` exception's text holds the URL, token included.
            exc.__cause__ = exc.__context__ = None
            raise exc from None
        try:
            body = response.json()
        except ValueError:
            raise TransientGatewayError(f"{method}: unreadable answer", gateway=GATEWAY) from None
        if not isinstance(body, dict) or not body.get("ok"):
            description = body.get("description", "") if isinstance(body, dict) else ""
            raise PermanentGatewayError(f"{method}: {description}", gateway=GATEWAY)
        return body.get("result")


def _update(raw: dict[str, Any]) -> TelegramUpdate:
    post = raw.get("message") or raw.get("channel_post")
    # Other kinds (edits, membership changes) keep their id and chat but no text, so that a
    # signal is never read twice and the offset still moves past them.
    payload = post or next((value for value in raw.values() if isinstance(value, dict)), {})
    chat = payload.get("chat") or {}
    date = payload.get("date")
    return TelegramUpdate(
        update_id=int(raw["update_id"]),
        chat_id=str(chat.get("id", "")),
        chat_username=chat.get("username") or "",
        text=(post.get("text") or post.get("caption") or "") if post else "",
        date=datetime.fromtimestamp(date, tz=UTC) if date else timezone.now(),
    )
