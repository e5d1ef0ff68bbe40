"""A deleted (deactivated) user, or one whose plan ended, stops trading.

What was seen: after `DELETE auth/me/` the user's session stayed active and a staff signal
opened a trade for them. Now deactivation stops every session of the user in its own
transaction and fails the trades not yet sent to the broker; a fan-out never targets an
inactive user's session; a cancelled or expired plan stops the user's sessions too.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import AuditEvent, User
from accounts.roles import Role
from accounts.services import user_deactivate
from core.errors import ApplicationError
from gateways.models import SimulatedBrokerTrade
from licensing.models import Subscription
from licensing.services import subscription_cancel, subscription_create
from licensing.services.subscriptions import subscriptions_expire_due
from licensing.tasks import expire_subscriptions
from tests.concurrency import run_at_once
from trading_sessions.models import SignalSkip, Trade, TradingSession
from trading_sessions.services import (
    session_start,
    signal_receive,
    trade_manual,
    trades_open,
    trades_settle,
)

pytestmark = pytest.mark.django_db

SIGNAL = {"channel": "vip-signals", "asset": "EURUSD", "direction": "call", "duration": 60}


@pytest.fixture
def trader(make_user, make_session, subscribed):
    """A subscribed client with one running session."""
    user = subscribed(make_user())
    return user, make_session(user)


@pytest.fixture
def staff_api(make_user):
    client = APIClient()
    token = RefreshToken.for_user(make_user(role=Role.SUPER_ADMIN)).access_token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_deleting_my_account_stops_my_sessions_and_a_later_signal_trades_nothing(
    trader, as_user, staff_api, channel
):
    user, session = trader

    assert as_user(user).delete("/api/v1/auth/me/").status_code == 204
    sent = staff_api.post("/api/v1/signals/", SIGNAL, format="json")

    session.refresh_from_db()
    assert not session.is_active
    assert session.stop_reason == TradingSession.StopReason.ACCOUNT_CLOSED
    assert sent.status_code == 201
    assert sent.json()["trades_created"] == 0
    assert not Trade.objects.filter(user=user).exists()


def test_deactivation_fails_the_trades_not_yet_sent_to_the_broker(trader, channel):
    user, session = trader
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    pending = Trade.objects.get(user=user)
    assert pending.result == Trade.Result.PENDING  # the worker has not opened it yet

    user_deactivate(user=user)
    opened = trades_open(trade_ids=[pending.pk])

    pending.refresh_from_db()
    assert pending.result == Trade.Result.FAILED
    assert pending.failure_reason.startswith("account_closed")
    assert opened == {}
    session.refresh_from_db()
    assert not session.is_active and not session.trade_in_flight


def test_a_trade_at_the_broker_when_the_account_closes_is_recorded_and_settles(
    trader, channel, monkeypatch
):
    """The opener read the trade as pending and called the broker; the user deactivated
    during that call. The broker opened it: the history says so, and it settles."""
    user, session = trader
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    trade = Trade.objects.get(user=user)
    from trading_sessions.services import trades as trades_module

    real = trades_module.get_broker_gateway()

    class ClosingDuringTheCall:
        def __getattr__(self, name):
            return getattr(real, name)

        def open_trade(self, *args, **kwargs):
            user_deactivate(user=User.objects.get(pk=user.pk))
            return real.open_trade(*args, **kwargs)

    monkeypatch.setattr(trades_module, "get_broker_gateway", ClosingDuringTheCall)

    assert trades_open(trade_ids=[trade.pk]) == {"opened": 1}

    trade.refresh_from_db()
    assert trade.result == Trade.Result.OPEN and trade.broker_trade_id
    assert trade.failure_reason == "" and trade.closed_at is None
    session.refresh_from_db()
    assert not session.is_active
    monkeypatch.undo()
    with time_machine.travel(trade.expires_at + timedelta(seconds=1)):
        assert trades_settle(trade_ids=[trade.pk]).get("settled") == 1
    trade.refresh_from_db()
    assert trade.result in Trade.SETTLED


def test_deactivation_stops_sessions_in_its_own_transaction(trader, monkeypatch):
    """The audit of the deactivation fails: the user stays active and so do the sessions."""
    user, session = trader
    from accounts.services import users

    def refuse(**kwargs):
        raise RuntimeError("audit down")

    monkeypatch.setattr(users, "audit_record", refuse)

    with pytest.raises(RuntimeError):
        user_deactivate(user=user)

    session.refresh_from_db()
    assert User.objects.get(pk=user.pk).is_active
    assert session.is_active


def test_a_session_of_a_user_deactivated_behind_the_services_back_is_never_targeted(
    trader, channel
):
    # The admin's user form can untick "active" without going through user_deactivate.
    user, _session = trader
    User.objects.filter(pk=user.pk).update(is_active=False)

    outcome = signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)

    assert outcome.signal.sessions_targeted == 0
    assert not Trade.objects.filter(user=user).exists()


def test_a_pending_trade_of_an_inactive_user_is_failed_not_opened(trader, channel):
    user, _session = trader
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    User.objects.filter(pk=user.pk).update(is_active=False)  # behind the services' back

    assert trades_open(trade_ids=list(Trade.objects.values_list("pk", flat=True))) == {"failed": 1}
    assert Trade.objects.get().failure_reason.startswith("account_closed")


def test_deactivation_leaves_other_users_sessions_running(trader, make_user, make_session):
    user, _ = trader
    other = make_session(make_user())

    user_deactivate(user=user)

    other.refresh_from_db()
    assert other.is_active


# --- Plans -----------------------------------------------------------------------------------


@pytest.fixture
def premium_trader(make_user, make_session, subscribed):
    user = subscribed(make_user())
    subscription = subscription_create(user=user, plan_code="premium")
    sessions = [make_session(user), make_session(user)]
    return user, subscription, sessions


def test_cancelling_a_plan_stops_every_session_of_its_user(premium_trader):
    _user, subscription, sessions = premium_trader

    subscription_cancel(subscription=subscription)

    for session in sessions:
        session.refresh_from_db()
        assert not session.is_active
        assert session.stop_reason == TradingSession.StopReason.PLAN_ENDED
    # The user may start again under the free quotas (one active session).
    assert session_start(session=sessions[0]).is_active


def test_moving_to_another_plan_does_not_stop_anything(premium_trader):
    user, _, _sessions = premium_trader

    subscription_create(user=user, plan_code="vip")

    assert TradingSession.objects.filter(user=user, is_active=True).count() == 2


def test_an_expired_plan_stops_the_sessions_when_the_sweep_finds_it(premium_trader):
    user, subscription, _sessions = premium_trader

    with time_machine.travel(subscription.ends_at + timedelta(seconds=1)):
        assert expire_subscriptions() == 1
        assert subscriptions_expire_due() == 0  # found once

    subscription.refresh_from_db()
    assert not subscription.is_active and subscription.cancelled_at is None
    assert TradingSession.objects.filter(user=user, is_active=True).count() == 0
    assert set(TradingSession.objects.values_list("stop_reason", flat=True)) == {"plan_ended"}
    assert AuditEvent.objects.filter(action="subscription.expire").count() == 1


def test_before_the_sweep_an_expired_plan_already_trades_nothing(premium_trader, channel):
    user, subscription, sessions = premium_trader

    with time_machine.travel(subscription.ends_at + timedelta(seconds=1)):
        outcome = signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
        with pytest.raises(ApplicationError) as refused:
            trade_manual(
                user=user,
                session_id=sessions[0].pk,
                asset="EURUSD",
                direction="call",
                amount=Decimal("1.00"),
                duration=60,
            )

    assert outcome.signal.trades_created == 0
    assert set(SignalSkip.objects.values_list("reason", flat=True)) == {"plan_ended"}
    assert refused.value.code == "plan_ended"
    assert Subscription.objects.get(pk=subscription.pk).is_active  # the sweep has not run


def test_a_plan_that_has_not_ended_keeps_trading(premium_trader, channel):
    _user, subscription, _ = premium_trader

    with time_machine.travel(subscription.ends_at - timedelta(seconds=1)):
        assert subscriptions_expire_due() == 0
        outcome = signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)

    assert outcome.signal.trades_created == 2
    assert timezone.now() < subscription.ends_at


# --- Races (PostgreSQL, real threads on their own connections) --------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deactivations_racing_signal_fan_outs_never_leave_a_trade_to_open(
    make_user, make_session, subscribed, channel
):
    """Ten users delete their accounts while three signals fan out, all at once. Whichever
    commits first, no trade of a deactivated user is left to open at the broker, and none is
    created after the deactivation committed."""
    users = [subscribed(make_user()) for _ in range(10)]
    for user in users:
        make_session(user, stop_loss=Decimal("1000.00"))

    def work(n):
        if n < len(users):
            user_deactivate(user=users[n])
            return ("deactivated", users[n].pk, timezone.now())
        return ("signal", signal_receive(channel=channel, ref=f"race-{n}", **SIGNAL_FIELDS))

    results, errors = run_at_once(work, threads=len(users) + 3)

    assert errors == []
    assert not TradingSession.objects.filter(is_active=True).exists()
    assert not Trade.objects.filter(result__in=Trade.UNSETTLED).exists()
    deactivated_at = {r[1]: r[2] for r in results if r[0] == "deactivated"}
    for trade in Trade.objects.all():
        assert trade.created_at <= deactivated_at[trade.user_id]
        assert trade.failure_reason.startswith("account_closed")
    trades_open(trade_ids=list(Trade.objects.values_list("pk", flat=True)))
    assert not SimulatedBrokerTrade.objects.exists()


SIGNAL_FIELDS = {"asset": "EURUSD", "direction": "call", "duration": 60}
