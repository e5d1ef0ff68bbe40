"""sessions/: create, edit, start, stop, status and delete one's own sessions."""

from decimal import Decimal

import pytest

from licensing.services import subscription_create
from trading_sessions.models import Trade, TradingSession

pytestmark = pytest.mark.django_db

URL = "/api/v1/sessions/"
STATUS_FIELDS = {
    "session_id",
    "is_active",
    "current_balance",
    "net_profit",
    "total_trades",
    "winning_trades",
    "losing_trades",
    "draw_trades",
    "win_rate",
    "session_duration",
    "current_gale_count",
    "next_stake",
    "started_at",
    "stopped_at",
    "stop_reason",
    "last_trade",
}


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def owner_api(owner, as_user):
    return as_user(owner)


@pytest.fixture
def account(owner, make_account):
    return make_account(owner)


def body(account, **changes) -> dict:
    return {
        "session_name": "EURUSD morning",
        "account_id": account.pk,
        "trade_amount": "5.00",
        "gale_limit": 2,
        "stop_profit": "100.00",
        "stop_loss": "50.00",
        **changes,
    }


def test_a_new_session_is_stopped_with_money_as_strings(owner_api, account):
    response = owner_api.post(URL, body(account, max_trade_amount="15"), format="json")

    assert response.status_code == 201
    session = response.json()
    assert session["is_active"] is False
    assert session["account_id"] == account.pk
    assert session["account_name"] == account.account_name
    assert session["trade_amount"] == "5.00"
    assert session["gale_multiplier"] == "2.00"
    assert session["max_trade_amount"] == "15.00"
    assert session["stop_profit"] == "100.00"
    assert session["stop_loss"] == "50.00"
    assert session["net_profit"] == "0.00"


def test_the_list_is_paginated_and_holds_the_callers_sessions(owner_api, account):
    owner_api.post(URL, body(account), format="json")

    listing = owner_api.get(URL).json()

    assert set(listing) == {"count", "next", "previous", "results"}
    assert [s["session_name"] for s in listing["results"]] == ["EURUSD morning"]


def test_start_answers_the_status_body_of_a_running_session(owner_api, account):
    session_id = owner_api.post(URL, body(account), format="json").json()["id"]

    response = owner_api.post(f"{URL}{session_id}/start/")

    assert response.status_code == 200
    status = response.json()
    assert set(status) == STATUS_FIELDS
    assert status["session_id"] == session_id
    assert status["is_active"] is True
    assert status["current_balance"] == "10000.00"
    assert status["net_profit"] == "0.00"
    assert status["next_stake"] == "5.00"
    assert status["total_trades"] == 0
    assert status["win_rate"] == 0.0
    assert status["current_gale_count"] == 0
    assert status["session_duration"] == "0m"
    assert status["last_trade"] is None
    assert TradingSession.objects.get(pk=session_id).is_active


def test_stop_answers_the_status_with_the_reason(owner_api, owner, make_session):
    session = make_session(owner)

    response = owner_api.post(f"{URL}{session.pk}/stop/")

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["stop_reason"] == "manual"
    assert response.json()["next_stake"] is None
    assert not TradingSession.objects.get(pk=session.pk).is_active


def test_status_shows_the_run_stats_and_the_last_trade(owner_api, owner, make_session):
    session = make_session(owner)
    TradingSession.objects.filter(pk=session.pk).update(
        net_profit=Decimal("-1.00"),
        total_trades=3,
        winning_trades=2,
        losing_trades=1,
        current_gale_count=1,
    )
    Trade.objects.create(
        user=owner,
        session=session,
        account=session.account,
        source="manual",
        asset="EURUSD",
        direction="put",
        amount=Decimal("10.00"),
        duration=60,
        result="loss",
        profit=Decimal("-10.00"),
    )

    response = owner_api.get(f"{URL}{session.pk}/status/")

    assert response.status_code == 200
    status = response.json()
    assert status["net_profit"] == "-1.00"
    assert (status["total_trades"], status["winning_trades"], status["losing_trades"]) == (3, 2, 1)
    assert status["win_rate"] == 66.67
    assert status["current_gale_count"] == 1
    assert status["next_stake"] == "10.00"
    assert status["last_trade"]["asset"] == "EURUSD"
    assert status["last_trade"]["amount"] == "10.00"
    assert status["last_trade"]["profit"] == "-10.00"
    assert status["last_trade"]["result"] == "loss"


def test_a_ladder_that_can_lose_more_than_the_stop_loss_is_refused_with_the_numbers(
    owner_api, account
):
    session_id = owner_api.post(URL, body(account, stop_loss="30.00"), format="json").json()["id"]

    response = owner_api.post(f"{URL}{session_id}/start/")

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "gale_exposure"
    assert (error["ladder_loss"], error["stop_loss"]) == ("35.00", "30.00")
    assert error["balance"] == "10000.00"
    assert not TradingSession.objects.get(pk=session_id).is_active


def test_a_second_running_session_of_a_free_user_is_refused(
    owner_api, owner, account, make_session
):
    make_session(owner, account=account)
    second = make_session(owner, account=account, start=False)

    response = owner_api.post(f"{URL}{second.pk}/start/")

    assert response.status_code == 409
    assert response.json()["code"] == "quota_exceeded"
    assert response.json()["limit"] == 1
    assert not TradingSession.objects.get(pk=second.pk).is_active


def test_starting_a_running_session_again_changes_nothing(owner_api, owner, make_session):
    session = make_session(owner)

    response = owner_api.post(f"{URL}{session.pk}/start/")

    assert response.status_code == 200
    assert response.json()["is_active"] is True


def test_editing_a_running_session_applies_from_its_next_start(owner_api, owner, make_session):
    session = make_session(owner)

    edited = owner_api.patch(f"{URL}{session.pk}/", {"trade_amount": "6.00"}, format="json")
    running = owner_api.get(f"{URL}{session.pk}/status/").json()
    owner_api.post(f"{URL}{session.pk}/stop/")
    restarted = owner_api.post(f"{URL}{session.pk}/start/").json()

    assert edited.status_code == 200
    assert edited.json()["trade_amount"] == "6.00"
    assert running["next_stake"] == "5.00"
    assert restarted["next_stake"] == "6.00"


def test_put_replaces_the_settings(owner_api, owner, account, make_session):
    session = make_session(owner, account=account, start=False)

    response = owner_api.put(
        f"{URL}{session.pk}/",
        body(account, session_name="Renamed", gale_limit=0, gale_multiplier="1.50"),
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["session_name"] == "Renamed"
    assert response.json()["gale_limit"] == 0
    assert response.json()["gale_multiplier"] == "1.50"


def test_a_running_session_cannot_move_to_another_account(
    owner_api, owner, make_session, make_account
):
    subscription_create(user=owner, plan_code="premium")
    session = make_session(owner)
    other_account = make_account(owner)

    response = owner_api.patch(
        f"{URL}{session.pk}/", {"account_id": other_account.pk}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "session_active"


def test_a_stopped_session_is_deleted_and_a_running_one_is_not(owner_api, owner, make_session):
    running = make_session(owner)
    stopped = make_session(owner, account=running.account, start=False)

    refused = owner_api.delete(f"{URL}{running.pk}/")
    deleted = owner_api.delete(f"{URL}{stopped.pk}/")

    assert refused.status_code == 409
    assert refused.json()["code"] == "session_active"
    assert deleted.status_code == 204
    assert list(TradingSession.objects.values_list("pk", flat=True)) == [running.pk]


def test_a_session_on_an_unknown_account_is_a_404(owner_api, account):
    response = owner_api.post(URL, body(account, account_id=account.pk + 1000), format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
    assert not TradingSession.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"trade_amount": "abc"}, "trade_amount"),
        ({"trade_amount": "-5.00"}, "trade_amount"),
        ({"trade_amount": "0"}, "trade_amount"),
        ({"trade_amount": "5.001"}, "trade_amount"),
        ({"trade_amount": "1e20"}, "trade_amount"),
        ({"trade_amount": "NaN"}, "trade_amount"),
        ({"trade_amount": 99999999999999999999999}, "trade_amount"),
        ({"stop_loss": "Infinity"}, "stop_loss"),
        ({"stop_profit": None}, "stop_profit"),
        ({"gale_limit": 11}, "gale_limit"),
        ({"gale_limit": -1}, "gale_limit"),
        ({"gale_limit": "two"}, "gale_limit"),
        ({"gale_limit": 1.5}, "gale_limit"),
        ({"gale_multiplier": "0.99"}, "gale_multiplier"),
        ({"gale_multiplier": "10.01"}, "gale_multiplier"),
        ({"max_trade_amount": "-1"}, "max_trade_amount"),
        ({"account_id": "mine"}, "account_id"),
        ({"account_id": 2**70}, "account_id"),
        ({"account_id": 0}, "account_id"),
        ({"session_name": ""}, "session_name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(owner_api, account, changes, field):
    response = owner_api.post(URL, body(account, **changes), format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not TradingSession.objects.exists()


def test_a_missing_body_names_every_required_field(owner_api):
    response = owner_api.post(URL)

    assert response.status_code == 400
    assert set(response.json()) == {
        "session_name",
        "account_id",
        "trade_amount",
        "gale_limit",
        "stop_profit",
        "stop_loss",
    }


def test_a_bad_patch_changes_nothing(owner_api, owner, make_session):
    session = make_session(owner, start=False)

    response = owner_api.patch(f"{URL}{session.pk}/", {"stop_loss": "-3"}, format="json")

    assert response.status_code == 400
    assert TradingSession.objects.get(pk=session.pk).stop_loss == Decimal("50.00")


def test_unknown_and_absurd_session_ids_are_404s_with_a_code(owner_api):
    for path in ("123456/", "123456/status/", "99999999999999999999999/start/"):
        method = owner_api.post if path.endswith("start/") else owner_api.get
        response = method(f"{URL}{path}")
        assert response.status_code == 404
        assert response.json()["code"] == "session_not_found"
