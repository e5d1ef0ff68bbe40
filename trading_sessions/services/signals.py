"""Signals: channel subscriptions, receiving a signal once, and fanning it out in bulk.

A fan-out walks the active sessions subscribed to the channel in batches of
`TRADING_FANOUT_BATCH` (keyset on the session id). Each batch is one transaction with a
fixed number of queries, whatever its size: lock the owners' quotas, claim the sessions that
have no trade in flight (of active owners only), count today's and open trades per owner, read
their plans (one past its end trades nothing), bulk-insert the trades and the skips, move the
signal's cursor. A crash between batches resumes after the cursor (the
sweeper does it), and (signal, session) is unique, so no session ever trades a signal twice.
"""

import hashlib
import re
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from core.errors import ApplicationError
from core.locks import AdvisoryLock, advisory_xact_lock_many
from licensing.models import Quota
from licensing.services.quotas import plans_many

from ..engine import GaleSettings, next_stake
from ..errors import UnknownChannelError
from ..models import (
    ChannelSubscription,
    Signal,
    SignalChannel,
    SignalSkip,
    Trade,
    TradingSession,
)
from .common import enqueue, logger, quota_require

MIN_DURATION, MAX_DURATION = 5, 86_400
ASSET = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,31}$")
# "EURUSD CALL 1M", "GBPJPY PUT 5M", "EUR/USD-OTC call 30s", optional emoji or words around
# are not signals: the whole message must be the signal.
SIGNAL_TEXT = re.compile(
    r"^\s*(?P<asset>[A-Za-z0-9]{3,12}(?:/[A-Za-z0-9]{3,12})?(?:[-_ ]OTC)?)\s+"
    r"(?P<direction>CALL|PUT|BUY|SELL)\s+(?P<n>\d{1,5})\s*(?P<unit>[SMH])\s*$",
    re.IGNORECASE,
)
UNIT_SECONDS = {"S": 1, "M": 60, "H": 3600}
DIRECTIONS = {"CALL": "call", "BUY": "call", "PUT": "put", "SELL": "put"}


@dataclass(frozen=True)
class ParsedSignal:
    asset: str
    direction: str
    duration: int


@dataclass(frozen=True)
class SignalOutcome:
    """The signal, and whether this call recorded it (False: it was known already)."""

    signal: Signal
    created: bool


def asset_normalize(raw: str) -> str:
    """ "eur/usd otc" -> "EURUSD-OTC"; 400 `invalid_asset` when it cannot be an asset."""
    asset = re.sub(r"[\s_]+", "-", raw.strip().upper().replace("/", ""))
    if not ASSET.match(asset):
        raise ApplicationError(
            "An asset is 2 to 32 letters, digits, '-' or '_' (e.g. EURUSD).", code="invalid_asset"
        )
    return asset


def signal_parse(text: str) -> ParsedSignal | None:
    """A channel message as a signal ("EURUSD CALL 1M"), or None when it is not one."""
    match = SIGNAL_TEXT.match(text or "")
    if match is None:
        return None
    duration = int(match["n"]) * UNIT_SECONDS[match["unit"].upper()]
    if not MIN_DURATION <= duration <= MAX_DURATION:
        return None
    try:
        asset = asset_normalize(match["asset"])
    except ApplicationError:
        return None
    return ParsedSignal(asset, DIRECTIONS[match["direction"].upper()], duration)


def channel_get(*, code: str) -> SignalChannel:
    channel = SignalChannel.objects.filter(code=code, is_active=True).first()
    if channel is None:
        raise UnknownChannelError(f"No active signal channel {code!r}.")
    return channel


def channel_subscribe(*, user, channel_code: str) -> tuple[ChannelSubscription, bool]:
    """Subscribe the user's sessions to a channel (within the plan's max channels): the
    subscription, and whether this call made it (a caller answers 201 or 200 from that, never
    from a read before the write: two subscribes at once make one, and one of them says so)."""
    channel = channel_get(code=channel_code)
    try:
        with transaction.atomic():
            existing = ChannelSubscription.objects.filter(user=user, channel=channel).first()
            if existing is not None:
                return existing, False
            quota_require(
                user=user,
                what=Quota.SIGNAL_CHANNELS,
                used=lambda: ChannelSubscription.objects.filter(user=user).count(),
            )
            return ChannelSubscription.objects.create(user=user, channel=channel), True
    except IntegrityError:
        # The same subscribe at the same moment won: its row is the answer.
        return ChannelSubscription.objects.get(user=user, channel=channel), False


def channel_unsubscribe(*, user, channel_code: str) -> bool:
    """Stop taking a channel's signals; False when the user was not subscribed."""
    deleted, _ = ChannelSubscription.objects.filter(user=user, channel__code=channel_code).delete()
    return bool(deleted)


def _signal_ref(*, ref, asset, direction, duration, sent_at) -> str:
    if ref:
        return f"ref:{ref}"
    if sent_at is not None:
        content = f"{asset}|{direction}|{duration}|{sent_at.isoformat()}"
        return "sent:" + hashlib.sha256(content.encode()).hexdigest()[:40]
    return f"new:{uuid.uuid4().hex}"


def signal_receive(
    *,
    channel: SignalChannel,
    asset: str,
    direction: str,
    duration: int,
    sent_at: datetime | None = None,
    ref: str | None = None,
    source: str = Signal.Source.API,
    sent_by=None,
) -> SignalOutcome:
    """Record a signal once per (channel, ref) and fan it out, unless it is stale.

    Without `ref`, a signal with `sent_at` is identified by its content and send time; one
    without either is always new."""
    now = timezone.now()
    asset = asset_normalize(asset)
    if direction not in ("call", "put"):
        raise ApplicationError("direction is call or put.", code="invalid_direction")
    if not MIN_DURATION <= int(duration) <= MAX_DURATION:
        raise ApplicationError(
            f"duration is {MIN_DURATION} to {MAX_DURATION} seconds.", code="invalid_duration"
        )
    if sent_at is not None and sent_at > now + timedelta(
        seconds=settings.TRADING_SIGNAL_MAX_SKEW_SECONDS
    ):
        raise ApplicationError("sent_at is in the future.", code="invalid_sent_at")
    key = _signal_ref(ref=ref, asset=asset, direction=direction, duration=duration, sent_at=sent_at)
    fields = {
        "asset": asset,
        "direction": direction,
        "duration": int(duration),
        "sent_at": sent_at or now,
        "received_at": now,
        "source": source,
        "sent_by": sent_by,
    }
    age = (now - fields["sent_at"]).total_seconds()
    if age > settings.TRADING_SIGNAL_MAX_AGE_SECONDS:
        fields["status"] = Signal.Status.STALE
        fields["skip_reason"] = (
            f"stale: sent {age:.0f} s ago, limit {settings.TRADING_SIGNAL_MAX_AGE_SECONDS} s"
        )
    try:
        with transaction.atomic():
            signal = Signal.objects.create(channel=channel, ref=key, **fields)
    except IntegrityError:
        return SignalOutcome(Signal.objects.get(channel=channel, ref=key), False)
    if signal.status == Signal.Status.STALE:
        logger.info("signal %s skipped: %s", signal.pk, signal.skip_reason)
        return SignalOutcome(signal, True)
    signal_fan_out(signal=signal)
    signal.refresh_from_db()
    return SignalOutcome(signal, True)


def signal_fan_out(*, signal: Signal) -> Signal:
    """Create one trade per active subscribed session (or a skip saying why), in batches."""
    started = time.monotonic()
    batch_size = settings.TRADING_FANOUT_BATCH
    subscribers = ChannelSubscription.objects.filter(channel_id=signal.channel_id).values("user_id")
    cursor = signal.fanout_cursor
    while True:
        batch = list(
            TradingSession.objects.filter(
                is_active=True, user__is_active=True, user_id__in=subscribers, pk__gt=cursor
            )
            .order_by("pk")
            .values_list("pk", "user_id")[:batch_size]
        )
        if not batch:
            break
        cursor = batch[-1][0]
        _fan_out_batch(signal=signal, batch=batch, cursor=cursor)
        if len(batch) < batch_size:
            break
    elapsed_ms = int((time.monotonic() - started) * 1000)
    Signal.objects.filter(pk=signal.pk, status=Signal.Status.FANNING_OUT).update(
        status=Signal.Status.DONE, fanout_ms=elapsed_ms
    )
    logger.info("signal %s fanned out in %d ms", signal.pk, elapsed_ms)
    return signal


@dataclass(frozen=True)
class _Claimed:
    """A claimed session, as the fan-out reads it (a tuple, not a model: 1,000 per batch)."""

    pk: int
    user_id: int
    account_id: int
    trade_in_flight: bool
    settings_snapshot: dict
    current_gale_count: int
    net_profit: Decimal


def _fan_out_batch(*, signal: Signal, batch: list[tuple[int, int]], cursor: int) -> None:
    now = timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    user_ids = {user_id for _, user_id in batch}
    trades: list[tuple[_Claimed, Decimal]] = []
    skips: list[SignalSkip] = []
    with transaction.atomic():
        # The signal row serializes runs of this fan-out (a resumed one and a late original):
        # each handles only the sessions after the cursor the other committed.
        done_up_to = (
            Signal.objects.select_for_update()
            .filter(pk=signal.pk)
            .values_list("fanout_cursor", flat=True)
            .get()
        )
        if done_up_to >= cursor:
            return
        # Owners' quota locks next (as a manual trade takes them), then the session rows.
        advisory_xact_lock_many(AdvisoryLock.LICENSING_QUOTA, user_ids)
        # The batch is the key range (lo, cursor]: ranges, not 1,000-long IN lists, in SQL.
        # Read after the owners' locks: a deactivation or a plan's end that holds one has
        # committed by now, and its stopped sessions are not claimed. (An inactive owner was
        # left out of the listing, so their sessions fail the `user_ids` test below; no join
        # to the users here, it doubled this query's time.)
        in_range = TradingSession.objects.filter(
            pk__gt=max(done_up_to, batch[0][0] - 1), pk__lte=cursor, is_active=True
        ).filter(
            user_id__in=ChannelSubscription.objects.filter(channel_id=signal.channel_id).values(
                "user_id"
            )
        )
        sessions = [
            claimed
            for claimed in (
                _Claimed(*row)
                for row in in_range.select_for_update()
                .order_by("pk")
                .values_list(*(f.name for f in fields(_Claimed)))
            )
            # Started since the listing (its owner is unlocked), or its owner is inactive.
            if claimed.user_id in user_ids
        ]
        owners = in_range.values("user_id")
        usage = Trade.objects.filter(user_id__in=owners).filter(
            Q(result__in=Trade.UNSETTLED)
            | (Q(created_at__gte=day_start) & ~Q(result=Trade.Result.FAILED))
        )
        today: Counter[int] = Counter()
        open_now: Counter[int] = Counter()
        for user_id, n_today, n_open in (
            usage.order_by()
            .values("user_id")
            .annotate(
                today=Count("pk", filter=Q(created_at__gte=day_start) & ~Q(result="failed")),
                open=Count("pk", filter=Q(result__in=Trade.UNSETTLED)),
            )
            .values_list("user_id", "today", "open")
        ):
            today[user_id], open_now[user_id] = n_today, n_open
        exposure = dict(
            Trade.objects.filter(
                session_id__gt=max(done_up_to, batch[0][0] - 1),
                session_id__lte=cursor,
                result__in=Trade.UNSETTLED,
            )
            .order_by()
            .values("session_id")
            .annotate(total=Sum("amount"))
            .values_list("session_id", "total")
        )
        limits, lapsed = plans_many(user_ids=user_ids, now=now)
        for session in sessions:
            reason: str | None
            stake: Decimal | None
            if session.user_id in lapsed:
                reason, stake = SignalSkip.Reason.PLAN_ENDED, None
            else:
                reason, stake = _decide(session, limits, today, open_now, exposure)
            if reason:
                skips.append(SignalSkip(signal=signal, session_id=session.pk, reason=reason))
                continue
            today[session.user_id] += 1
            open_now[session.user_id] += 1
            assert stake is not None  # no reason to skip: a stake
            trades.append((session, stake))
        trade_ids = _insert_trades(signal=signal, trades=trades, now=now)
        SignalSkip.objects.bulk_create(skips)
        if trades:
            TradingSession.objects.filter(pk__in=[s.pk for s, _ in trades]).update(
                trade_in_flight=True
            )
        Signal.objects.filter(pk=signal.pk).update(
            fanout_cursor=cursor,
            sessions_targeted=F("sessions_targeted") + len(trades) + len(skips),
            trades_created=F("trades_created") + len(trades),
            sessions_skipped=F("sessions_skipped") + len(skips),
        )
        chunk = settings.TRADING_OPEN_CHUNK
        for start in range(0, len(trade_ids), chunk):
            enqueue("open_trades", trade_ids=trade_ids[start : start + chunk])


def _insert_trades(*, signal: Signal, trades: list[tuple[_Claimed, Decimal]], now) -> list[int]:
    """Insert a batch's trades; returns their ids.

    On PostgreSQL one `INSERT ... SELECT FROM unnest(arrays)`: five arrays of the batch's
    size instead of twenty parameters per row, which is most of a fan-out's time otherwise.
    """
    if not trades:
        return []
    if connection.vendor != "postgresql":
        created = Trade.objects.bulk_create(
            Trade(
                user_id=session.user_id,
                session_id=session.pk,
                account_id=session.account_id,
                signal=signal,
                source=Trade.Source.SIGNAL,
                asset=signal.asset,
                direction=signal.direction,
                amount=stake,
                duration=signal.duration,
                gale_step=session.current_gale_count,
                created_at=now,
            )
            for session, stake in trades
        )
        return [trade.pk for trade in created]
    meta = Trade._meta
    column = {f.name: f.column for f in meta.concrete_fields if f.column is not None}
    per_row = ["client_order_id", "user", "session", "account", "amount", "gale_step"]
    constant = {
        "signal": signal.pk,
        "source": Trade.Source.SIGNAL.value,
        "asset": signal.asset,
        "direction": signal.direction,
        "duration": signal.duration,
        "result": Trade.Result.PENDING.value,
        "profit": Decimal("0.00"),
        "broker_trade_id": "",
        "attempts": 0,
        "failure_reason": "",
        "created_at": now,
    }
    targets = ", ".join(connection.ops.quote_name(column[name]) for name in [*per_row, *constant])
    # Only names from the model's own metadata are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({targets}) "  # noqa: S608
        f"SELECT r.*, {', '.join(['%s'] * len(constant))} FROM unnest("
        "%s::uuid[], %s::bigint[], %s::bigint[], %s::bigint[], %s::numeric[], %s::int[]) AS r "
        "RETURNING id"
    )
    arrays: list[list[Any]] = [
        [uuid.uuid4() for _ in trades],
        [session.user_id for session, _ in trades],
        [session.pk for session, _ in trades],
        [session.account_id for session, _ in trades],
        [stake for _, stake in trades],
        [session.current_gale_count for session, _ in trades],
    ]
    with connection.cursor() as db:
        db.execute(sql, [*constant.values(), *arrays])
        return [row[0] for row in db.fetchall()]


def _decide(
    session: _Claimed, limits, today, open_now, exposure
) -> tuple[str | None, Decimal | None]:
    """(skip reason, None) or (None, stake) for one claimed session."""
    if session.trade_in_flight:
        return SignalSkip.Reason.TRADE_IN_FLIGHT, None
    user_limits = limits[session.user_id]
    if today[session.user_id] >= user_limits[Quota.TRADES_PER_DAY]:
        return SignalSkip.Reason.DAILY_QUOTA, None
    if open_now[session.user_id] >= user_limits[Quota.OPEN_POSITIONS]:
        return SignalSkip.Reason.POSITIONS_QUOTA, None
    gale = GaleSettings.from_json(session.settings_snapshot)
    # Open manual trades of the session may still lose: they come off the budget first.
    at_risk = exposure.get(session.pk) or 0
    stake = next_stake(
        gale, gale_count=session.current_gale_count, net_profit=session.net_profit - at_risk
    )
    if stake <= 0:
        return SignalSkip.Reason.LOSS_BUDGET, None
    return None, stake


def signals_resume(*, older_than_seconds: int = 60) -> int:
    """Finish fan-outs a crash left half done (after their cursor); returns how many."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stuck = Signal.objects.filter(status=Signal.Status.FANNING_OUT, received_at__lt=cutoff)
    resumed = 0
    for signal in stuck.order_by("pk")[:100]:
        signal_fan_out(signal=signal)
        resumed += 1
    return resumed


def signal_skip_counts(signal: Signal) -> dict[str, int]:
    """{reason: sessions} for one signal (what the admin shows)."""
    counts = defaultdict(int)
    for reason, n in (
        SignalSkip.objects.filter(signal=signal)
        .order_by()
        .values("reason")
        .annotate(n=Count("pk"))
        .values_list("reason", "n")
    ):
        counts[reason] = n
    return dict(counts)
