"""trades/: one's own trades, manual trades, filters and statistics."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from trading_sessions.models import Trade

pytestmark = pytest.mark.django_db

URL = "/api/v1/trades/"
MANUAL = "/api/v1/trades/manual/"
STATISTICS = "/api/v1/trades/statistics/"


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def owner_api(owner, as_user):
    return as_user(owner)


@pytest.fixture
def session(owner, make_session):
    return make_session(owner)


@pytest.fixture
def settled(owner, session):
    """`settled(result, profit, days_ago=0)`: a settled trade of the session."""

    def make(result, profit, *, days_ago=0, amount="5.00"):
        closed = timezone.now() - timedelta(days=days_ago)
        return Trade.objects.create(
            user=owner,
            session=session,
            account=session.account,
            source="signal",
            asset="EURUSD",
            direction="call",
            amount=Decimal(amount),
            duration=60,
            result=result,
            profit=Decimal(profit),
            created_at=closed - timedelta(seconds=60),
            opened_at=closed - timedelta(seconds=60),
            closed_at=closed,
        )

    return make


def manual(**changes) -> dict:
    return {"asset": "EURUSD", "direction": "call", "amount": "5.00", "duration": 60, **changes}


def test_a_manual_trade_is_created_pending_on_a_running_session(owner_api, session):
    response = owner_api.post(MANUAL, manual(session_id=session.pk, asset="eur/usd"), format="json")

    assert response.status_code == 201
    trade = response.json()
    assert trade["session_id"] == session.pk
    assert trade["source"] == "manual"
    assert trade["asset"] == "EURUSD"
    assert trade["amount"] == "5.00"
    assert trade["profit"] == "0.00"
    assert trade["result"] == "pending"
    assert Trade.objects.filter(pk=trade["id"], source="manual").exists()


def test_a_trade_is_listed_and_read_by_its_owner(owner_api, session):
    trade_id = owner_api.post(MANUAL, manual(session_id=session.pk), format="json").json()["id"]

    listing = owner_api.get(URL).json()
    detail = owner_api.get(f"{URL}{trade_id}/")

    assert set(listing) == {"count", "next", "previous", "results"}
    assert [t["id"] for t in listing["results"]] == [trade_id]
    assert detail.status_code == 200
    assert detail.json()["amount"] == "5.00"


def test_a_manual_trade_on_a_stopped_session_is_refused(owner_api, session):
    owner_api.post(f"/api/v1/sessions/{session.pk}/stop/")

    response = owner_api.post(MANUAL, manual(session_id=session.pk), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "session_not_active"
    assert not Trade.objects.exists()


def test_a_manual_trade_over_the_loss_budget_is_refused(owner_api, session):
    response = owner_api.post(MANUAL, manual(session_id=session.pk, amount="50.01"), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "loss_budget_exceeded"
    assert response.json()["loss_budget"] == "50.00"


def test_a_free_user_has_three_open_positions(owner_api, session):
    answers = [
        owner_api.post(MANUAL, manual(session_id=session.pk, amount="1.00"), format="json")
        for _ in range(4)
    ]

    assert [a.status_code for a in answers] == [201, 201, 201, 409]
    assert answers[-1].json()["code"] == "quota_exceeded"
    assert Trade.objects.count() == 3


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"direction": "up"}, "direction"),
        ({"duration": 1}, "duration"),
        ({"duration": 86_401}, "duration"),
        ({"duration": "soon"}, "duration"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"amount": "12345678901234567890"}, "amount"),
        ({"session_id": "x"}, "session_id"),
        ({"session_id": 10**30}, "session_id"),
        ({"asset": "A" * 41}, "asset"),
    ],
)
def test_bad_manual_input_is_a_400_naming_the_field(owner_api, session, changes, field):
    response = owner_api.post(
        MANUAL, manual(**{"session_id": session.pk, **changes}), format="json"
    )

    assert response.status_code == 400
    assert field in response.json()
    assert not Trade.objects.exists()


def test_an_asset_that_cannot_be_one_is_a_400_with_a_code(owner_api, session):
    response = owner_api.post(MANUAL, manual(session_id=session.pk, asset="$$"), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_asset"


def test_a_manual_trade_on_an_unknown_session_is_a_404(owner_api, session):
    response = owner_api.post(MANUAL, manual(session_id=session.pk + 100), format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"


def test_the_list_filters_by_session_result_and_time(
    owner, owner_api, session, settled, make_session
):
    win = settled("win", "4.00")
    loss = settled("loss", "-5.00", days_ago=2)
    other = make_session(owner, account=session.account, start=False)
    Trade.objects.filter(pk=loss.pk).update(session=other)
    since = (timezone.now() - timedelta(days=1)).isoformat()

    def ids(**query):
        response = owner_api.get(URL, query)
        assert response.status_code == 200
        return [t["id"] for t in response.json()["results"]]

    assert ids() == [win.pk, loss.pk]
    assert ids(session=session.pk) == [win.pk]
    assert ids(session=other.pk) == [loss.pk]
    assert ids(result="loss") == [loss.pk]
    assert ids(since=since) == [win.pk]
    assert ids(until=since) == [loss.pk]


@pytest.mark.parametrize(
    "query",
    [
        {"session": "abc"},
        {"session": "1" * 30},
        {"result": "jackpot"},
        {"since": "yesterday"},
        {"until": "0001-01-01T00:00:00+16:59"},  # no such time in UTC
    ],
)
def test_bad_filters_are_400s(owner_api, query):
    assert owner_api.get(URL, query).status_code == 400


def test_a_time_with_an_offset_postgresql_refuses_is_read_in_utc(owner_api):
    # Python takes offsets up to 23:59, PostgreSQL only up to 15:59.
    assert owner_api.get(URL, {"since": "2026-01-01T00:00:00-17:30"}).status_code == 200


def test_the_list_takes_the_same_queries_for_many_trades(owner_api, settled):
    settled("win", "4.00")
    with CaptureQueriesContext(connection) as one:
        owner_api.get(URL)
    for _ in range(5):
        settled("loss", "-5.00")
    with CaptureQueriesContext(connection) as six:
        assert owner_api.get(URL).json()["count"] == 6

    assert len(six) == len(one)


def test_statistics_count_settled_trades_with_the_best_and_worst_day(owner_api, settled):
    settled("win", "4.00")
    settled("loss", "-5.00", days_ago=1)
    settled("draw", "0.00", days_ago=40)
    today = timezone.now().date()

    response = owner_api.get(STATISTICS, {"period": "last_7_days"})

    assert response.status_code == 200
    stats = response.json()
    assert stats["total_trades"] == 2
    assert (stats["winning_trades"], stats["losing_trades"]) == (1, 1)
    assert stats["win_rate"] == 50.0
    assert stats["net_profit"] == "-1.00"
    assert stats["best_day"] == {"date": today.isoformat(), "profit": "4.00", "trades": 1}
    assert stats["worst_day"] == {
        "date": (today - timedelta(days=1)).isoformat(),
        "loss": "-5.00",
        "profit": "-5.00",
        "trades": 1,
    }


def test_when_no_day_lost_money_the_worst_day_has_no_loss(owner_api, settled):
    """What was seen: a profitable day reported as `worst_day: {loss: "32.00"}`."""
    settled("win", "40.00")
    settled("win", "32.00", days_ago=1)
    yesterday = (timezone.now().date() - timedelta(days=1)).isoformat()

    stats = owner_api.get(STATISTICS).json()

    assert stats["worst_day"] == {"date": yesterday, "loss": None, "profit": "32.00", "trades": 1}


def test_the_worst_days_loss_is_its_net_over_all_its_trades(owner_api, settled):
    settled("win", "8.00", days_ago=1)
    settled("loss", "-5.00", days_ago=1)  # yesterday: +3.00 net, no loss
    settled("win", "4.00")
    settled("loss", "-10.00")  # today: -6.00 net
    today = timezone.now().date().isoformat()

    stats = owner_api.get(STATISTICS).json()

    assert stats["worst_day"] == {"date": today, "loss": "-6.00", "profit": "-6.00", "trades": 2}
    assert stats["best_day"]["profit"] == "3.00"


def test_a_day_of_draws_only_lost_nothing(owner_api, settled):
    settled("draw", "0.00")

    stats = owner_api.get(STATISTICS).json()

    assert stats["worst_day"]["loss"] is None
    assert stats["worst_day"]["profit"] == "0.00"


def test_statistics_over_a_custom_range(owner_api, settled):
    """What was seen: `since` and `until` ignored, the answer for `period: "all"`."""
    settled("win", "4.00")
    settled("loss", "-5.00", days_ago=2)
    settled("win", "7.00", days_ago=10)
    now = timezone.now()
    since = (now - timedelta(days=3)).isoformat()
    until = (now - timedelta(days=1)).isoformat()

    stats = owner_api.get(STATISTICS, {"since": since, "until": until}).json()
    open_ended = owner_api.get(STATISTICS, {"since": since}).json()
    up_to = owner_api.get(STATISTICS, {"until": until}).json()

    assert (stats["period"], stats["total_trades"], stats["net_profit"]) == ("custom", 1, "-5.00")
    assert stats["since"] == since.replace("+00:00", "Z")
    assert stats["until"] == until.replace("+00:00", "Z")
    assert (open_ended["total_trades"], open_ended["net_profit"]) == (2, "-1.00")
    assert (up_to["total_trades"], up_to["net_profit"]) == (2, "2.00")


def test_a_named_period_says_where_it_starts(owner_api):
    stats = owner_api.get(STATISTICS, {"period": "today"}).json()
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)

    assert stats["period"] == "today"
    assert stats["since"] == midnight.isoformat().replace("+00:00", "Z")
    assert stats["until"] is None


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"period": "today", "since": "2026-01-01T00:00:00Z"}, "period_and_range"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "invalid_range"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "invalid_range"),
    ],
)
def test_a_range_that_cannot_be_is_a_400_with_a_code(owner_api, query, code):
    response = owner_api.get(STATISTICS, query)

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_statistics_by_period_and_session(owner, owner_api, session, settled, make_session):
    settled("win", "4.00")
    settled("loss", "-5.00", days_ago=1)
    other = make_session(owner, account=session.account, start=False)

    def total(**query):
        response = owner_api.get(STATISTICS, query)
        assert response.status_code == 200
        return response.json()["total_trades"]

    assert total() == 2  # period defaults to all
    assert total(period="today") == 1
    assert total(period="all", session_id=session.pk) == 2
    assert total(session_id=other.pk) == 0


def test_statistics_without_trades_have_no_best_or_worst_day(owner_api):
    stats = owner_api.get(STATISTICS, {"period": "today"}).json()

    assert stats["total_trades"] == 0
    assert stats["net_profit"] == "0.00"
    assert stats["best_day"] is None and stats["worst_day"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"period": "yesterday"},
        {"session_id": "x"},
        {"session_id": "9" * 40},
        {"since": "yesterday"},
        {"until": "0001-01-01T00:00:00+16:59"},  # no such time in UTC
    ],
)
def test_statistics_with_bad_parameters_are_400s(owner_api, query):
    response = owner_api.get(STATISTICS, query)

    assert response.status_code == 400
    assert set(response.json()) & {"period", "session_id", "since", "until"}


def test_statistics_of_an_unknown_session_are_a_404(owner_api, session):
    response = owner_api.get(STATISTICS, {"session_id": session.pk + 100})

    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"


def test_an_unknown_trade_is_a_404_with_a_code(owner_api):
    response = owner_api.get(f"{URL}4242/")

    assert response.status_code == 404
    assert response.json()["code"] == "trade_not_found"
