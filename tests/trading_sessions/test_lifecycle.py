"""Trades survive faults: the sweeper opens what a dead worker left, settles what is overdue;
the Telegram reader turns channel posts into signals; the broker password stays secret."""

import io
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from gateways.models import SimulatedBrokerTrade, SimulatedTelegramUpdate, SimulatorKnobs
from trading_sessions.models import BrokerAccount, Signal, TelegramCursor, Trade, TradingSession
from trading_sessions.services import (
    broker_account_check,
    broker_account_create,
    session_create,
    session_start,
    session_stop,
    signal_receive,
    telegram_poll,
    trades_sweep,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def traveller():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def test_the_sweeper_opens_a_trade_no_worker_opened_and_settles_it_when_overdue(
    make_user, make_session, subscribed, channel, traveller
):
    user = subscribed(make_user())
    session = make_session(user, rigging={"win_rate": "1"})
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    # The open_trades task was lost (the worker died): only the row exists.
    traveller.shift(6)

    assert trades_sweep()["opened"] == 1
    traveller.shift(60)  # expired, but the scheduled settle_trades task has its turn first
    assert trades_sweep()["settled"] == 0
    traveller.shift(6)  # now overdue past the grace: the sweeper settles it
    assert trades_sweep()["settled"] == 1

    trade = Trade.objects.get()
    assert (trade.result, trade.profit) == ("win", Decimal("4.00"))
    session.refresh_from_db()
    assert (session.net_profit, session.trade_in_flight) == (Decimal("4.00"), False)


def test_a_broker_outage_leaves_the_trade_pending_and_a_retry_opens_it_once(
    make_user, make_session, subscribed, channel, traveller
):
    user = subscribed(make_user())
    make_session(user)
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    knobs = SimulatorKnobs.objects.create(server="broker", error_rate=1)

    traveller.shift(6)
    assert trades_sweep()["opened"] == 0
    trade = Trade.objects.get()
    assert (trade.result, trade.attempts) == ("pending", 1)
    assert trade.next_attempt_at > timezone.now()

    knobs.error_rate = 0
    knobs.save()
    traveller.shift(120)
    assert trades_sweep()["opened"] == 1
    assert trades_sweep()["opened"] == 0
    assert SimulatedBrokerTrade.objects.count() == 1


def test_a_trade_the_broker_refuses_fails_and_frees_the_session_for_the_next_signal(
    make_user, make_session, subscribed, channel, traveller
):
    user = subscribed(make_user())
    session = make_session(user, stop_loss=Decimal("50.00"))
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    from tests.trading_sessions.conftest import rig

    rig(session.account.email, balance="1.00")
    traveller.shift(6)
    trades_sweep()

    trade = Trade.objects.get()
    assert trade.result == "failed"
    assert trade.failure_reason.startswith("insufficient_funds")
    session.refresh_from_db()
    assert (session.is_active, session.stop_reason) == (False, "insufficient_funds")


def test_a_trade_of_an_earlier_run_settles_into_the_history_not_the_new_run(
    make_user, make_session, subscribed, channel, traveller
):
    user = subscribed(make_user())
    session = make_session(user, rigging={"win_rate": "0"})
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    traveller.shift(6)
    trades_sweep()
    session_stop(session=session)
    session = session_start(session=TradingSession.objects.get(pk=session.pk))
    traveller.shift(66)

    trades_sweep()

    session.refresh_from_db()
    assert Trade.objects.get().result == "loss"
    assert (session.total_trades, session.net_profit, session.trade_in_flight) == (
        0,
        Decimal("0.00"),
        False,
    )


def post(text, *, chat="vipsignals", minutes_ago=0):
    return SimulatedTelegramUpdate.objects.create(
        chat_id="-100200300",
        chat_username=chat,
        text=text,
        date=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_the_telegram_reader_turns_channel_posts_into_signals_once(
    make_user, make_session, subscribed, channel, caplog
):
    user = subscribed(make_user())
    make_session(user)
    post("EURUSD CALL 1M")
    post("Good luck today, traders!")
    post("GBPJPY PUT 5M", chat="someotherchannel")
    post("USDJPY PUT 5M", minutes_ago=10)

    with caplog.at_level(logging.INFO, logger="trading_sessions"):
        counts = telegram_poll()
    again = telegram_poll()

    assert counts == {"updates": 4, "signals": 2, "unparsed": 1, "other_chats": 1}
    assert again["updates"] == 0
    fresh, stale = Signal.objects.order_by("sent_at").reverse()
    assert (fresh.asset, fresh.direction, fresh.duration, fresh.source) == (
        "EURUSD",
        "call",
        60,
        "telegram",
    )
    assert fresh.trades_created == 1
    assert stale.status == Signal.Status.STALE and stale.trades_created == 0
    assert "no signal: 'Good luck today, traders!'" in caplog.text
    cursor = TelegramCursor.objects.get()
    last = SimulatedTelegramUpdate.objects.order_by("pk").last().pk
    assert (cursor.next_offset, cursor.updates_read, cursor.unparsed) == (last + 1, 4, 1)


def test_the_broker_password_is_in_no_database_dump_and_no_log(
    make_user, make_session, subscribed, channel, caplog, traveller
):
    password = "Zebra-Quartz-9071!"
    user = subscribed(make_user())
    with caplog.at_level(logging.DEBUG):
        account = broker_account_create(
            user=user,
            account_name="Main",
            email="zebra@broker.test",
            password=password,
            account_type="demo",
        )
        broker_account_check(account=account)
        session = session_create(
            user=user,
            account_id=account.pk,
            session_name="s",
            trade_amount=Decimal("5.00"),
            gale_limit=1,
            stop_profit=Decimal("50.00"),
            stop_loss=Decimal("50.00"),
        )
        session_start(session=session)
        signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
        traveller.shift(6)
        trades_sweep()
        traveller.shift(66)
        trades_sweep()
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)

    assert Trade.objects.get().result in ("win", "loss")
    assert password not in dump.getvalue()
    assert password not in caplog.text
    assert BrokerAccount.objects.get().password == password  # and it still works
