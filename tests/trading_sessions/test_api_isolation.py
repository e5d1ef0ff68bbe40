"""Isolation: another user's broker account, session or trade is a 404 through the API, for a
client and for staff alike (staff see everyone's rows in the admin only)."""

from decimal import Decimal

import pytest

from accounts.roles import Role
from trading_sessions.models import BrokerAccount, Trade, TradingSession
from trading_sessions.services import trade_manual

pytestmark = pytest.mark.django_db


@pytest.fixture
def owners_rows(make_user, make_session):
    """The first user's account, running session and trade."""
    owner = make_user()
    session = make_session(owner)
    trade = trade_manual(
        user=owner,
        session_id=session.pk,
        asset="EURUSD",
        direction="call",
        amount=Decimal("5.00"),
        duration=60,
    )
    return owner, session.account, session, trade


@pytest.fixture(params=["client", "staff"])
def intruder(request, make_user, make_account):
    """A second user with an account of their own: a client, or a Super Admin."""
    user = make_user(role=Role.SUPER_ADMIN if request.param == "staff" else None)
    make_account(user)
    return user


def requests_on(account, session, trade, intruders_account) -> list[tuple[str, str, dict]]:
    a, s, t = account.pk, session.pk, trade.pk
    session_body = {
        "session_name": "Mine now",
        "account_id": intruders_account.pk,
        "trade_amount": "5.00",
        "gale_limit": 1,
        "stop_profit": "10.00",
        "stop_loss": "20.00",
    }
    account_body = {
        "account_name": "Mine now",
        "email": "intruder@broker.test",
        "password": "Intruder-pass-1",
        "account_type": "demo",
    }
    return [
        ("get", f"/api/v1/broker-accounts/{a}/", {}),
        ("put", f"/api/v1/broker-accounts/{a}/", account_body),
        ("patch", f"/api/v1/broker-accounts/{a}/", {"account_name": "Mine now"}),
        ("delete", f"/api/v1/broker-accounts/{a}/", {}),
        ("post", f"/api/v1/broker-accounts/{a}/test/", {}),
        ("get", f"/api/v1/broker-accounts/{a}/balance/", {}),
        ("get", f"/api/v1/sessions/{s}/", {}),
        ("put", f"/api/v1/sessions/{s}/", session_body),
        ("patch", f"/api/v1/sessions/{s}/", {"session_name": "Mine now"}),
        ("delete", f"/api/v1/sessions/{s}/", {}),
        ("post", f"/api/v1/sessions/{s}/start/", {}),
        ("post", f"/api/v1/sessions/{s}/stop/", {}),
        ("get", f"/api/v1/sessions/{s}/status/", {}),
        ("get", f"/api/v1/trades/{t}/", {}),
        ("get", f"/api/v1/trades/statistics/?session_id={s}", {}),
        (
            "post",
            "/api/v1/trades/manual/",
            {
                "session_id": s,
                "asset": "EURUSD",
                "direction": "put",
                "amount": "1.00",
                "duration": 60,
            },
        ),
        ("post", "/api/v1/sessions/", {**session_body, "account_id": a}),
    ]


def test_every_request_on_anothers_rows_is_a_404_and_changes_nothing(
    owners_rows, intruder, as_user
):
    owner, account, session, trade = owners_rows
    client = as_user(intruder)
    intruders_account = BrokerAccount.objects.get(user=intruder)

    answers = {
        f"{method.upper()} {url}": getattr(client, method)(url, body, format="json")
        for method, url, body in requests_on(account, session, trade, intruders_account)
    }

    assert {k: a.status_code for k, a in answers.items()} == dict.fromkeys(answers, 404)
    assert all("code" in a.json() for a in answers.values())
    account.refresh_from_db()
    session.refresh_from_db()
    assert account.account_name != "Mine now"
    assert (session.session_name, session.is_active) == ("EURUSD session", True)
    assert Trade.objects.filter(user=owner).count() == 1
    assert not Trade.objects.filter(user=intruder).exists()
    assert not TradingSession.objects.filter(user=intruder).exists()


def test_a_session_cannot_be_moved_onto_anothers_account(
    owners_rows, make_user, make_session, as_user
):
    _, account, _, _ = owners_rows
    intruder = make_user()
    own = make_session(intruder, start=False)

    response = as_user(intruder).patch(
        f"/api/v1/sessions/{own.pk}/", {"account_id": account.pk}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
    own.refresh_from_db()
    assert own.account_id != account.pk


def test_the_lists_hold_only_the_callers_own_rows(owners_rows, intruder, as_user):
    client = as_user(intruder)

    accounts = client.get("/api/v1/broker-accounts/").json()
    sessions = client.get("/api/v1/sessions/").json()
    trades = client.get("/api/v1/trades/").json()
    statistics = client.get("/api/v1/trades/statistics/").json()

    assert [a["email"] for a in accounts["results"]] == [
        BrokerAccount.objects.get(user=intruder).email
    ]
    assert sessions["count"] == 0
    assert trades["count"] == 0
    assert statistics["total_trades"] == 0


def test_the_owner_still_sees_their_rows(owners_rows, as_user):
    owner, account, session, trade = owners_rows
    client = as_user(owner)

    assert client.get(f"/api/v1/broker-accounts/{account.pk}/").status_code == 200
    assert client.get(f"/api/v1/sessions/{session.pk}/status/").status_code == 200
    assert client.get(f"/api/v1/trades/{trade.pk}/").json()["id"] == trade.pk
