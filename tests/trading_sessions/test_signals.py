"""Signals fan out once per (signal, session), in bulk, and say why a session was skipped."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import ApplicationError
from gateways.models import SimulatedBrokerTrade
from licensing.models import Plan
from licensing.services import subscription_create
from trading_sessions.models import Signal, SignalSkip, Trade, TradingSession
from trading_sessions.seeding import sessions_seed
from trading_sessions.services import (
    signal_parse,
    signal_receive,
    signals_resume,
    trades_open,
    trades_settle,
)
from trading_sessions.services.signals import _fan_out_batch

pytestmark = pytest.mark.django_db


def send(channel, **overrides):
    fields = {"asset": "EURUSD", "direction": "call", "duration": 60}
    fields.update(overrides)
    return signal_receive(channel=channel, **fields)


def test_one_signal_to_200_sessions_creates_200_trades_and_sending_it_again_none(channel):
    sessions = sessions_seed(count=200, channel=channel)
    sent_at = timezone.now()

    first = send(channel, sent_at=sent_at)
    again = send(channel, sent_at=sent_at)
    by_ref = send(channel, ref="tv-123")
    by_ref_again = send(channel, ref="tv-123", asset="GBPJPY")

    assert first.created and not again.created
    assert again.signal.pk == first.signal.pk
    assert first.signal.trades_created == first.signal.sessions_targeted == 200
    assert Trade.objects.filter(signal=first.signal).count() == 200
    assert set(Trade.objects.filter(signal=first.signal).values_list("session", flat=True)) == set(
        sessions
    )
    # Every session has that trade in flight: a second, different signal skips them all.
    assert by_ref.created and by_ref.signal.trades_created == 0
    assert not by_ref_again.created
    assert Trade.objects.count() == 200


def test_a_stale_signal_creates_no_trade_and_records_why(channel, settings):
    settings.TRADING_SIGNAL_MAX_AGE_SECONDS = 30
    sessions_seed(count=5, channel=channel)

    outcome = send(channel, sent_at=timezone.now() - timedelta(seconds=31))

    assert outcome.signal.status == Signal.Status.STALE
    assert outcome.signal.skip_reason.startswith("stale: sent 31 s ago, limit 30 s")
    assert Trade.objects.count() == 0


def test_a_signal_from_the_future_is_refused(channel):
    with pytest.raises(ApplicationError) as refused:
        send(channel, sent_at=timezone.now() + timedelta(minutes=5))
    assert refused.value.code == "invalid_sent_at"


def test_only_subscribed_running_sessions_trade(channel, make_user, make_session, subscribed):
    subscriber = subscribed(make_user())
    running = make_session(subscriber)
    stranger_session = make_session(make_user())
    idle = make_session(subscribed(make_user()), start=False)

    outcome = send(channel)

    traded = set(Trade.objects.values_list("session", flat=True))
    assert traded == {running.pk}
    assert stranger_session.pk not in traded and idle.pk not in traded
    assert outcome.signal.sessions_targeted == 1


@pytest.mark.postgres  # SQLite's bulk INSERTs are split by its parameter limit
def test_the_fan_out_makes_as_many_queries_for_twice_the_sessions_in_twice_larger_batches(
    channel, settings
):
    sessions_seed(count=300, channel=channel)

    def queries_with_batch(batch, limit):
        settings.TRADING_FANOUT_BATCH = batch
        TradingSession.objects.update(trade_in_flight=False)
        active = TradingSession.objects.order_by("pk").values_list("pk", flat=True)
        TradingSession.objects.filter(pk__in=list(active[limit:])).update(is_active=False)
        with CaptureQueriesContext(connection) as queries:
            outcome = send(channel)
        TradingSession.objects.update(is_active=True)
        return len(queries), outcome.signal.trades_created

    small = queries_with_batch(50, 150)  # 3 batches of 50
    large = queries_with_batch(100, 300)  # 3 batches of 100

    assert (small[1], large[1]) == (150, 300)
    assert small[0] == large[0]


def test_a_user_over_the_daily_trade_quota_is_skipped_with_the_reason(
    channel, make_user, make_session, subscribed
):
    Plan.objects.filter(code="basic").update(max_trades_per_day=1)
    user = subscribed(make_user())
    subscription_create(user=user, plan_code="basic")
    session = make_session(user)
    first = send(channel).signal
    Trade.objects.filter(signal=first).update(result="win", closed_at=timezone.now())
    TradingSession.objects.filter(pk=session.pk).update(trade_in_flight=False)

    second = send(channel, asset="GBPJPY").signal

    assert second.trades_created == 0
    assert SignalSkip.objects.get(signal=second).reason == "daily_trade_quota"


def test_open_positions_are_counted_across_a_users_sessions(
    channel, make_user, make_session, subscribed
):
    Plan.objects.filter(code="basic").update(max_open_positions=1, max_broker_accounts=5)
    user = subscribed(make_user())
    subscription_create(user=user, plan_code="basic")
    make_session(user)
    make_session(user)

    signal = send(channel).signal

    assert signal.trades_created == 1
    assert SignalSkip.objects.get(signal=signal).reason == "open_positions_quota"


def test_an_interrupted_fan_out_resumes_after_its_cursor_without_trading_twice(channel, settings):
    settings.TRADING_FANOUT_BATCH = 10
    sessions = sessions_seed(count=25, channel=channel)
    signal = Signal.objects.create(
        channel=channel,
        asset="EURUSD",
        direction="put",
        duration=60,
        sent_at=timezone.now(),
        ref="x",
    )
    first_ten = list(TradingSession.objects.order_by("pk").values_list("pk", "user_id")[:10])
    _fan_out_batch(signal=signal, batch=first_ten, cursor=first_ten[-1][0])  # then the crash

    signal.received_at = timezone.now() - timedelta(minutes=5)
    signal.save(update_fields=["received_at"])
    assert signals_resume() == 1
    _fan_out_batch(signal=signal, batch=first_ten, cursor=first_ten[-1][0])  # a late repeat

    signal.refresh_from_db()
    assert signal.status == Signal.Status.DONE
    assert signal.trades_created == 25
    assert sorted(Trade.objects.values_list("session", flat=True)) == sorted(sessions)


def test_trades_open_once_at_the_broker_and_settle_with_its_payout(channel, settings):
    import time_machine

    sessions_seed(count=3, channel=channel, simulated_broker={"win_rate": Decimal("1")})
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        signal = send(channel).signal
        ids = list(Trade.objects.filter(signal=signal).values_list("pk", flat=True))
        assert trades_open(trade_ids=ids) == {"opened": 3}
        assert trades_open(trade_ids=ids) == {}  # nothing pending any more
        traveller.shift(61)
        assert trades_settle() == {"settled": 3}
        assert trades_settle() == {}

    assert SimulatedBrokerTrade.objects.count() == 3
    assert set(Trade.objects.values_list("result", "profit")) == {("win", Decimal("4.00"))}
    assert set(TradingSession.objects.values_list("net_profit", "trade_in_flight")) == {
        (Decimal("4.00"), False)
    }


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("EURUSD CALL 1M", ("EURUSD", "call", 60)),
        ("GBPJPY PUT 5M", ("GBPJPY", "put", 300)),
        ("  eur/usd-otc call 30s ", ("EURUSD-OTC", "call", 30)),
        ("USDJPY SELL 1H", ("USDJPY", "put", 3600)),
    ],
)
def test_channel_messages_parse_into_signals(text, parsed):
    signal = signal_parse(text)
    assert (signal.asset, signal.direction, signal.duration) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Good morning traders!",
        "EURUSD UP 1M",
        "EURUSD CALL",
        "EURUSD CALL 2S",
        "🚀 EURUSD CALL 1M",
    ],
)
def test_other_messages_are_not_signals(text):
    assert signal_parse(text) is None
