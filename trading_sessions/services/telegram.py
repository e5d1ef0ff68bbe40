"""The Telegram channel reader: channel posts such as `EURUSD CALL 1M` become signals."""

from django.db.models import F
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from core.errors import ApplicationError
from gateways.errors import GatewayError
from gateways.telegram import get_telegram_gateway

from ..models import Signal, SignalChannel, TelegramCursor
from .common import logger
from .signals import signal_parse, signal_receive


def _chat_keys(chat_id: str, username: str) -> set[str]:
    keys = {str(chat_id)}
    if username:
        keys.add("@" + username.lstrip("@").lower())
    return keys


def telegram_poll(*, limit: int = 100) -> dict[str, int]:
    """Read new updates once; each post of a known channel is a signal or is logged and
    skipped. The offset is kept in the database, so a restart neither rereads nor loses."""
    channels = {}
    for active in SignalChannel.objects.filter(is_active=True).exclude(telegram_chat=""):
        chat = active.telegram_chat.strip()
        channels[chat.lower() if chat.startswith("@") else chat] = active
    counts = {"updates": 0, "signals": 0, "unparsed": 0, "other_chats": 0}
    if not channels:
        return counts
    cursor, _ = TelegramCursor.objects.get_or_create(pk=1)
    try:
        updates = get_telegram_gateway().get_updates(offset=cursor.next_offset, limit=limit)
    except GatewayError as exc:
        logger.warning("telegram reader: Telegram did not answer (%s)", exc)
        return counts
    for update in updates:
        counts["updates"] += 1
        unparsed_before = counts["unparsed"]
        channel = next(
            (
                channels[k]
                for k in _chat_keys(update.chat_id, update.chat_username)
                if k in channels
            ),
            None,
        )
        if channel is None:
            counts["other_chats"] += 1
        elif (parsed := signal_parse(update.text)) is None:
            counts["unparsed"] += 1
            logger.info(
                "telegram reader: skipped a post of %s that is no signal: %r",
                channel.code,
                update.text[:80],
            )
        else:
            try:
                signal_receive(
                    channel=channel,
                    asset=parsed.asset,
                    direction=parsed.direction,
                    duration=parsed.duration,
                    sent_at=update.date,
                    ref=f"tg:{update.update_id}",
                    source=Signal.Source.TELEGRAM,
                )
                counts["signals"] += 1
            except ApplicationError as exc:
                # Refused (e.g. sent "in the future" by a clock far ahead): never retried,
                # or the reader would stop at this update for good.
                counts["unparsed"] += 1
                logger.warning(
                    "telegram reader: refused a post of %s: %s", channel.code, exc.detail
                )
        # Counters in SQL and the offset never moved back: two overlapping polls (a slow one
        # and beat's next) lose no count and undo no progress; their signals dedupe by ref.
        TelegramCursor.objects.filter(pk=cursor.pk).update(
            next_offset=Greatest(Coalesce(F("next_offset"), 0), update.update_id + 1),
            last_polled_at=timezone.now(),
            updates_read=F("updates_read") + 1,
            unparsed=F("unparsed") + (counts["unparsed"] - unparsed_before),
        )
    if not updates:
        TelegramCursor.objects.filter(pk=cursor.pk).update(last_polled_at=timezone.now())
    return counts
