"""The staff screens of trading sessions."""

from decimal import Decimal

import pytest

from accounts.roles import Role
from trading_sessions.models import BrokerAccount, Signal, TradingSession
from trading_sessions.services import signal_receive, trade_manual

pytestmark = pytest.mark.django_db

PASSWORD = "Broker-admin-secret-55"
CHANGELISTS = [
    "/admin/trading_sessions/tradingsession/",
    "/admin/trading_sessions/trade/",
    "/admin/trading_sessions/signal/",
    "/admin/trading_sessions/signalchannel/",
    "/admin/trading_sessions/channelsubscription/",
    "/admin/trading_sessions/brokeraccount/",
    "/admin/trading_sessions/telegramcursor/",
]


@pytest.fixture
def staff_client(client, make_user):
    def login(role):
        client.force_login(make_user(role=role, is_staff=True))
        return client

    return login


@pytest.fixture
def busy(make_user, make_session, make_account, subscribed, channel):
    """A client with a running session that traded two signals (the second one skipped)."""
    user = subscribed(make_user())
    session = make_session(user, account=make_account(user, password=PASSWORD))
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    signal_receive(channel=channel, asset="GBPJPY", direction="put", duration=60)
    trade_manual(
        user=user,
        session_id=session.pk,
        asset="USDJPY",
        direction="call",
        amount=Decimal("1.00"),
        duration=60,
    )
    return session


def test_every_changelist_renders_for_a_super_admin(staff_client, busy):
    client = staff_client(Role.SUPER_ADMIN)

    for url in CHANGELISTS:
        response = client.get(url)
        assert response.status_code == 200, url
    sessions = client.get(CHANGELISTS[0]).content.decode()
    assert busy.user.email in sessions and busy.session_name in sessions


def test_the_change_pages_of_a_session_a_trade_and_a_signal_render(staff_client, busy):
    client = staff_client(Role.SUPER_ADMIN)
    trade = busy.trades.first()

    for url in (
        f"/admin/trading_sessions/tradingsession/{busy.pk}/change/",
        f"/admin/trading_sessions/trade/{trade.pk}/change/",
    ):
        assert client.get(url).status_code == 200, url


def test_a_signal_page_shows_how_many_sessions_it_skipped_and_why(staff_client, busy):
    skipped = Signal.objects.get(asset="GBPJPY")

    page = staff_client(Role.SUPER_ADMIN).get(
        f"/admin/trading_sessions/signal/{skipped.pk}/change/"
    )

    assert page.status_code == 200
    assert skipped.sessions_skipped == 1
    assert "Its previous trade is not settled yet" in page.content.decode()


def test_the_stop_action_stops_the_selected_sessions_as_an_operator(staff_client, busy):
    response = staff_client(Role.SUPER_ADMIN).post(
        CHANGELISTS[0], {"action": "stop_selected", "_selected_action": [busy.pk]}
    )

    assert response.status_code == 302
    busy.refresh_from_db()
    assert not busy.is_active
    assert busy.stop_reason == TradingSession.StopReason.OPERATOR


def test_the_test_connection_action_records_the_brokers_answer(staff_client, busy):
    BrokerAccount.objects.filter(pk=busy.account_id).update(connection_status="unknown")

    staff_client(Role.SUPER_ADMIN).post(
        CHANGELISTS[5], {"action": "test_connection", "_selected_action": [busy.account_id]}
    )

    assert BrokerAccount.objects.get(pk=busy.account_id).connection_status == "connected"


def test_the_broker_account_pages_never_show_the_password(staff_client, busy):
    ciphertext = BrokerAccount.objects.values_list("password", flat=True).get(pk=busy.account_id)
    client = staff_client(Role.SUPER_ADMIN)

    for url in (
        CHANGELISTS[5],
        f"/admin/trading_sessions/brokeraccount/{busy.account_id}/change/",
    ):
        page = client.get(url)
        assert page.status_code == 200
        assert PASSWORD.encode() not in page.content
        assert ciphertext.encode() not in page.content
        assert ciphertext.split(":")[-1].encode() not in page.content


def test_a_read_only_user_views_sessions_but_cannot_change_or_stop_them(staff_client, busy):
    client = staff_client(Role.READ_ONLY)
    change_url = f"/admin/trading_sessions/tradingsession/{busy.pk}/change/"

    listing = client.get(CHANGELISTS[0])
    page = client.get(change_url)
    stop = client.post(CHANGELISTS[0], {"action": "stop_selected", "_selected_action": [busy.pk]})
    edit = client.post(change_url, {"session_name": "Renamed"})

    assert listing.status_code == 200
    assert b"stop_selected" not in listing.content
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert stop.status_code in (200, 302)
    assert edit.status_code == 403
    busy.refresh_from_db()
    assert busy.is_active
    assert busy.session_name == "EURUSD session"


@pytest.mark.parametrize("role", [Role.CAMPAIGN_MANAGER, Role.SUPPORT_AGENT, Role.READ_ONLY])
def test_every_staff_role_sees_the_trading_screens(staff_client, busy, role):
    client = staff_client(role)

    for url in CHANGELISTS:
        assert client.get(url).status_code == 200, url


def test_a_client_cannot_open_the_trading_screens(client, make_user, busy):
    client.force_login(make_user())

    response = client.get(CHANGELISTS[0])

    assert response.status_code == 302  # to the admin login
