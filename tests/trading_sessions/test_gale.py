"""The gale engine end to end: signals open trades, the simulated broker settles them."""

from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from trading_sessions.engine import GaleSettings, ladder_exposure, next_gale_count, next_stake
from trading_sessions.errors import GaleExposureError
from trading_sessions.models import SignalSkip, Trade, TradingSession
from trading_sessions.services import session_start, signal_receive, trades_open, trades_settle

pytestmark = pytest.mark.django_db


def play(channel, traveller, asset="EURUSD") -> list[Trade]:
    """One signal: its trades opened at the broker, then settled once they expire."""
    signal = signal_receive(channel=channel, asset=asset, direction="call", duration=60).signal
    trades = list(Trade.objects.filter(signal=signal))
    trades_open(trade_ids=[t.pk for t in trades])
    traveller.shift(61)
    trades_settle()
    return [Trade.objects.get(pk=t.pk) for t in trades]


@pytest.fixture
def traveller():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def test_five_losses_take_stakes_5_10_20_5_10_and_stop_at_minus_50(
    make_user, make_session, subscribed, channel, traveller
):
    user = subscribed(make_user())
    session = make_session(user, rigging={"win_rate": "0"})

    stakes = []
    for _ in range(5):
        (trade,) = play(channel, traveller)
        assert trade.result == "loss"
        stakes.append(trade.amount)
    session.refresh_from_db()

    assert stakes == [Decimal(s) for s in ("5.00", "10.00", "20.00", "5.00", "10.00")]
    assert session.net_profit == Decimal("-50.00")
    assert not session.is_active
    assert session.stop_reason == TradingSession.StopReason.STOP_LOSS
    assert session.losing_trades == 5


def test_a_stopped_session_takes_no_signal(make_user, make_session, subscribed, channel, traveller):
    user = subscribed(make_user())
    make_session(user, rigging={"win_rate": "0"})
    for _ in range(5):
        play(channel, traveller)

    assert play(channel, traveller) == []
    assert Trade.objects.count() == 5


def test_a_loss_then_a_win_returns_to_the_base_stake(
    make_user, make_account, make_session, subscribed, channel, traveller
):
    user = subscribed(make_user())
    account = make_account(user, win_rate="0")
    session = make_session(user, account=account)
    (first,) = play(channel, traveller)
    assert first.result == "loss"

    from tests.trading_sessions.conftest import rig

    rig(account.email, win_rate="1")
    (second,) = play(channel, traveller)
    (third,) = play(channel, traveller)
    session.refresh_from_db()

    assert (first.amount, second.amount, third.amount) == (
        Decimal("5.00"),
        Decimal("10.00"),
        Decimal("5.00"),
    )
    assert second.result == "win" and second.profit == Decimal("8.00")  # 80% payout
    assert session.current_gale_count == 0
    assert session.net_profit == Decimal("-5.00") + Decimal("8.00") + Decimal("4.00")


def test_a_draw_repeats_the_same_step(
    make_user, make_account, make_session, subscribed, channel, traveller
):
    user = subscribed(make_user())
    account = make_account(user, win_rate="0")
    session = make_session(user, account=account)
    play(channel, traveller)  # loss: step 1 next

    from tests.trading_sessions.conftest import rig

    rig(account.email, win_rate="0", draw_rate="1")
    (draw,) = play(channel, traveller)
    (again,) = play(channel, traveller)
    session.refresh_from_db()

    assert (draw.result, draw.amount, draw.profit) == ("draw", Decimal("10.00"), Decimal("0.00"))
    assert again.amount == Decimal("10.00")
    assert session.current_gale_count == 1


def test_stop_profit_stops_the_session_and_records_why(
    make_user, make_session, subscribed, channel, traveller
):
    user = subscribed(make_user())
    session = make_session(user, stop_profit=Decimal("10.00"), rigging={"win_rate": "1"})

    play(channel, traveller)  # +4.00
    play(channel, traveller)  # +8.00
    play(channel, traveller)  # +12.00: over
    session.refresh_from_db()

    assert session.net_profit == Decimal("12.00")
    assert not session.is_active
    assert session.stop_reason == TradingSession.StopReason.STOP_PROFIT
    assert play(channel, traveller) == []


def test_start_is_refused_when_the_ladder_can_lose_more_than_the_stop_loss(make_user, make_session):
    session = make_session(make_user(), start=False, stop_loss=Decimal("30.00"))

    with pytest.raises(GaleExposureError) as refused:
        session_start(session=session)

    assert refused.value.status_code == 400
    assert refused.value.code == "gale_exposure"
    assert refused.value.extra["ladder_loss"] == "35.00"
    assert refused.value.extra["stop_loss"] == "30.00"
    session.refresh_from_db()
    assert not session.is_active


def test_start_is_refused_when_the_ladder_can_lose_more_than_the_balance(make_user, make_session):
    session = make_session(
        make_user(), start=False, rigging={"balance": "20.00"}, stop_loss=Decimal("50.00")
    )

    with pytest.raises(GaleExposureError) as refused:
        session_start(session=session)

    assert refused.value.extra["balance"] == "20.00"


def test_a_stake_is_cut_to_what_is_left_of_the_loss_budget():
    gale = GaleSettings(
        trade_amount=Decimal("5.00"),
        gale_limit=3,
        gale_multiplier=Decimal("2"),
        stop_profit=Decimal("100"),
        stop_loss=Decimal("30.00"),
    )

    # Step 2 would stake 20.00, but only 30.00 - 15.00 = 15.00 may still be lost.
    assert next_stake(gale, gale_count=2, net_profit=Decimal("-15.00")) == Decimal("15.00")
    assert next_stake(gale, gale_count=0, net_profit=Decimal("-30.00")) == Decimal("0.00")
    assert ladder_exposure(gale) == Decimal("75.00")
    assert next_gale_count(gale, gale_count=3, result="loss") == 0


def test_max_trade_amount_caps_every_stake(make_user, make_session, subscribed, channel, traveller):
    user = subscribed(make_user())
    make_session(
        user,
        max_trade_amount=Decimal("8.00"),
        stop_loss=Decimal("100.00"),
        rigging={"win_rate": "0"},
    )

    amounts = [play(channel, traveller)[0].amount for _ in range(3)]

    assert amounts == [Decimal("5.00"), Decimal("8.00"), Decimal("8.00")]


def test_editing_a_running_session_applies_from_its_next_start(
    make_user, make_session, subscribed, channel, traveller
):
    from trading_sessions.services import session_stop, session_update

    user = subscribed(make_user())
    session = make_session(user, rigging={"win_rate": "1"})
    session_update(session=session, trade_amount=Decimal("7.00"))
    (during,) = play(channel, traveller)
    session_stop(session=session)
    session_start(session=TradingSession.objects.get(pk=session.pk))
    (after,) = play(channel, traveller)

    assert (during.amount, after.amount) == (Decimal("5.00"), Decimal("7.00"))


def test_a_session_with_a_trade_in_flight_skips_the_next_signal(
    make_user, make_session, subscribed, channel
):
    user = subscribed(make_user())
    session = make_session(user)
    first = signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60).signal
    second = signal_receive(channel=channel, asset="GBPJPY", direction="put", duration=60).signal

    assert Trade.objects.filter(session=session).count() == 1
    assert first.trades_created == 1
    assert second.trades_created == 0
    assert SignalSkip.objects.get(signal=second).reason == "trade_in_flight"
