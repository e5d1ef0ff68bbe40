"""Fan-out, manual trades and settlement under real concurrency (PostgreSQL, own connections)."""

from decimal import Decimal

import pytest
from django.utils import timezone

from licensing.errors import QuotaExceededError
from licensing.models import Plan
from licensing.services import subscription_create
from tests.concurrency import run_at_once
from trading_sessions.models import Signal, Trade, TradingSession
from trading_sessions.seeding import sessions_seed
from trading_sessions.services import signal_receive, trade_manual, trade_settle

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_ten_different_signals_at_once_give_each_session_exactly_one_trade(channel):
    sessions = sessions_seed(count=50, channel=channel)

    results, errors = run_at_once(
        lambda n: signal_receive(
            channel=channel, asset="EURUSD", direction="call", duration=60, ref=f"sig-{n}"
        ),
        threads=10,
    )

    assert errors == []
    assert Signal.objects.count() == 10
    assert Trade.objects.count() == 50
    assert sorted(Trade.objects.values_list("session", flat=True)) == sorted(sessions)
    assert sum(r.signal.trades_created for r in results) == 50


def test_the_same_signal_ten_times_at_once_is_one_signal_and_one_trade_per_session(channel):
    sessions_seed(count=30, channel=channel)

    results, errors = run_at_once(
        lambda n: signal_receive(
            channel=channel, asset="EURUSD", direction="call", duration=60, ref="same"
        ),
        threads=10,
    )

    assert errors == []
    assert sum(r.created for r in results) == 1
    assert Signal.objects.count() == 1
    assert Trade.objects.count() == 30


@pytest.fixture
def busy_trader(make_user, make_session, subscribed):
    """A basic-plan user allowed 3 trades a day (and many open positions), one session."""
    Plan.objects.filter(code="basic").update(max_trades_per_day=3, max_open_positions=50)
    user = subscribed(make_user())
    subscription_create(user=user, plan_code="basic")
    session = make_session(user, stop_loss=Decimal("1000.00"))
    return user, session


def test_concurrent_manual_trades_never_pass_the_daily_quota(busy_trader):
    user, session = busy_trader

    results, errors = run_at_once(
        lambda n: trade_manual(
            user=user,
            session_id=session.pk,
            asset="EURUSD",
            direction="call",
            amount=Decimal("1.00"),
            duration=60,
        ),
        threads=10,
    )

    assert len(results) == 3
    assert len(errors) == 7 and all(isinstance(e, QuotaExceededError) for e in errors)
    assert Trade.objects.filter(user=user).count() == 3


def test_signals_and_manual_trades_at_once_share_the_daily_quota_without_deadlock(
    busy_trader, channel
):
    user, session = busy_trader

    def work(n):
        if n % 2:
            return signal_receive(
                channel=channel, asset="EURUSD", direction="call", duration=60, ref=f"s{n}"
            )
        return trade_manual(
            user=user,
            session_id=session.pk,
            asset="GBPJPY",
            direction="put",
            amount=Decimal("1.00"),
            duration=60,
        )

    _, errors = run_at_once(work, threads=8)

    assert all(isinstance(e, QuotaExceededError) for e in errors), errors
    assert Trade.objects.filter(user=user).count() == 3
    assert Trade.objects.filter(user=user, source="signal").count() <= 1


def test_a_trade_settled_by_five_workers_at_once_counts_once(
    make_user, make_session, subscribed, channel
):
    user = subscribed(make_user())
    session = make_session(user)
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    trade = Trade.objects.get()
    Trade.objects.filter(pk=trade.pk).update(result="open", opened_at=timezone.now())
    trade.refresh_from_db()

    results, errors = run_at_once(
        lambda n: trade_settle(trade=trade, result="loss", profit=Decimal("-5.00")), threads=5
    )

    assert errors == []
    assert sorted(results) == ["already"] * 4 + ["settled"]
    session = TradingSession.objects.get(pk=session.pk)
    assert (session.total_trades, session.losing_trades, session.net_profit) == (
        1,
        1,
        Decimal("-5.00"),
    )
    assert session.current_gale_count == 1
