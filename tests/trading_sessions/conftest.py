import importlib
from decimal import Decimal

import pytest

from gateways.models import SimulatedBrokerAccount
from trading_sessions.models import SignalChannel
from trading_sessions.services import (
    broker_account_create,
    channel_subscribe,
    session_create,
    session_start,
)


@pytest.fixture(autouse=True)
def _plans(request):
    """The plans the licensing migration seeds (a transactional test before may flush them)."""
    if not request.node.get_closest_marker("django_db"):
        if "db" not in request.fixturenames:
            return
        request.getfixturevalue("db")
    from django.apps import apps

    importlib.import_module("licensing.migrations.0002_seed_plans").seed(apps, None)


def rig(email: str, *, win_rate="0.50", draw_rate="0.00", payout="0.80", balance=None):
    """Make the simulated broker's account of `email` (demo) win, lose or draw as told."""
    fields = {"win_rate": Decimal(win_rate), "draw_rate": Decimal(draw_rate)}
    fields["payout"] = Decimal(payout)
    if balance is not None:
        fields["balance"] = Decimal(balance)
    SimulatedBrokerAccount.objects.filter(email=email, account_type="demo").update(**fields)


@pytest.fixture
def make_account(db):
    """`make_account(user, email=...)`: a demo broker account the simulated broker knows."""
    counter = iter(range(1, 1_000_000))

    def make(user, email=None, password="Broker-pass-1", account_type="demo", **rigging):
        email = email or f"trader{next(counter)}@broker.test"
        account = broker_account_create(
            user=user,
            account_name=f"Account of {user.pk}",
            email=email,
            password=password,
            account_type=account_type,
        )
        if rigging:
            rig(email, **rigging)
        return account

    return make


@pytest.fixture
def make_session(make_account):
    """`make_session(user, start=True, **settings)` on a fresh demo account."""

    def make(user, *, start=True, account=None, rigging=None, **settings):
        account = account or make_account(user, **(rigging or {}))
        fields = {
            "session_name": "EURUSD session",
            "trade_amount": Decimal("5.00"),
            "gale_limit": 2,
            "stop_profit": Decimal("100.00"),
            "stop_loss": Decimal("50.00"),
        }
        fields.update(settings)
        session = session_create(user=user, account_id=account.pk, **fields)
        return session_start(session=session) if start else session

    return make


@pytest.fixture
def channel(db):
    return SignalChannel.objects.create(
        code="vip-signals", name="VIP signals", telegram_chat="@vipsignals"
    )


@pytest.fixture
def subscribed(channel):
    """`subscribed(user)`: the user takes the channel's signals."""

    def subscribe(user):
        channel_subscribe(user=user, channel_code=channel.code)
        return user

    return subscribe
