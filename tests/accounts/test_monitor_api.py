"""The monitoring endpoints of shared/API.md: roles, shapes, status codes, the sweep end to end."""

from datetime import datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AccountEvent, AuditEvent, MonitoredAccount
from accounts.roles import Role
from accounts.selectors import monitor_status
from bonuses.models import Bonus
from gateways.models import SimulatedMT5Deal
from gateways.mt5 import get_mt5_gateway

pytestmark = pytest.mark.django_db

BASE = "/api/v1/monitoring"
STATUS = f"{BASE}/status/"
ACCOUNTS = f"{BASE}/accounts/"
SWEEP = f"{BASE}/sweep/"
STAFF = [role.value for role in Role]
CALLERS = [*STAFF, "client", "anonymous"]
ROW_FIELDS = {
    "login",
    "balance",
    "equity",
    "credit",
    "leverage",
    "status",
    "consecutive_errors",
    "last_error",
    "last_polled_at",
}
SWEEP_FIELDS = {"accounts", "deposits", "withdrawals", "drawdowns", "trades", "errors", "ms"}


@pytest.fixture
def client_as(api, make_user, as_user):
    """`client_as(kind)`: the API client as a staff role's value, "client" or "anonymous"."""

    def login(kind):
        if kind == "anonymous":
            return api
        return as_user(make_user(role=None if kind == "client" else Role(kind)))

    return login


@pytest.fixture
def admin_api(client_as):
    return client_as(Role.SUPER_ADMIN.value)


def expected(kind, allowed, ok=200):
    if kind == "anonymous":
        return 401
    return ok if kind in allowed else 403


def server(login):
    return get_mt5_gateway().get_accounts([login])[login]


def pause(login, errors=5, last_error="account_not_found: gone"):
    MonitoredAccount.objects.filter(login=login).update(
        status=MonitoredAccount.Status.PAUSED, consecutive_errors=errors, last_error=last_error
    )


# --- Who may call what ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize("url", [STATUS, ACCOUNTS, f"{ACCOUNTS}10001/"])
def test_every_staff_role_reads_the_monitoring_endpoints_and_no_one_else(
    kind, url, watched, client_as
):
    response = client_as(kind).get(url)
    assert response.status_code == expected(kind, STAFF)


ACTIONS = [
    ("register", f"{ACCOUNTS}10001/register/", {}, 200),
    ("reset-errors", f"{ACCOUNTS}10001/reset-errors/", {}, 200),
    ("test-deposit", f"{ACCOUNTS}10001/test-deposit/", {"amount": "10.00"}, 201),
    ("test-withdraw", f"{ACCOUNTS}10001/test-withdraw/", {"amount": "10.00"}, 201),
    ("sweep", SWEEP, {}, 200),
]


@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize(("name", "url", "body", "ok"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_only_a_super_admin_registers_resets_posts_test_deals_and_sweeps(
    kind, name, url, body, ok, watched, client_as
):
    deals_before = SimulatedMT5Deal.objects.count()

    response = client_as(kind).post(url, body, format="json")

    assert response.status_code == expected(kind, {Role.SUPER_ADMIN.value}, ok)
    if response.status_code in (401, 403):
        assert SimulatedMT5Deal.objects.count() == deals_before
        assert "code" in response.json()


# --- Status -----------------------------------------------------------------------------------


def test_the_status_before_any_sweep_counts_the_accounts_and_has_no_last_sweep(watched, admin_api):
    response = admin_api.get(STATUS)

    assert response.status_code == 200
    assert response.json() == {
        "accounts_total": 10,
        "active": 10,
        "paused": 0,
        "last_sweep_at": None,
        "last_sweep_ms": None,
        "sweeps_total": 0,
        "events_pending": 0,
    }


def test_the_status_shows_paused_accounts_open_events_and_the_last_sweep(watched, admin_api):
    admin_api.post(SWEEP)
    admin_api.post(SWEEP)
    pause(10002)
    pause(10003)
    AccountEvent.objects.create(
        server=settings.MT5_SERVER,
        login=10004,
        kind=AccountEvent.Kind.DEPOSIT,
        ticket=999_999,
        amount=Decimal("5.00"),
        occurred_at=datetime.fromisoformat("2025-01-01T00:00:00+00:00"),
    )

    data = admin_api.get(STATUS).json()

    assert (data["accounts_total"], data["active"], data["paused"]) == (10, 8, 2)
    assert data["sweeps_total"] == 2
    assert data["events_pending"] == 1
    assert isinstance(data["last_sweep_ms"], int)
    assert datetime.fromisoformat(data["last_sweep_at"].replace("Z", "+00:00")).tzinfo


def test_the_status_selector_counts_statuses_in_one_grouped_query(
    watched, django_assert_num_queries
):
    pause(10005)
    # One GROUP BY for the statuses, one count of the open events.
    with django_assert_num_queries(2):
        status = monitor_status()
    assert (status["accounts_total"], status["active"], status["paused"]) == (10, 9, 1)


# --- The account list -------------------------------------------------------------------------


def test_the_list_answers_the_contract_fields_with_money_as_two_decimal_strings(watched, admin_api):
    response = admin_api.get(ACCOUNTS)

    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 10
    assert {"count", "next", "previous", "results"} <= set(page)
    first = page["results"][0]
    assert set(first) >= ROW_FIELDS
    assert first["login"] == 10001
    account = server(10001)
    assert first["balance"] == f"{account.balance:.2f}"
    assert first["credit"] == f"{account.credit:.2f}"
    assert first["equity"] == f"{account.equity:.2f}"
    assert first["leverage"] == account.leverage
    assert (first["status"], first["consecutive_errors"], first["last_error"]) == ("active", 0, "")
    assert [row["login"] for row in page["results"]] == list(range(10001, 10011))


def test_the_list_filters_by_status_and_login_and_orders(watched, admin_api):
    pause(10004)
    pause(10007)

    paused = admin_api.get(ACCOUNTS, {"status": "paused"}).json()
    one = admin_api.get(ACCOUNTS, {"login": 10003}).json()
    by_errors = admin_api.get(ACCOUNTS, {"ordering": "-consecutive_errors"}).json()
    by_balance = admin_api.get(ACCOUNTS, {"ordering": "-balance"}).json()

    assert [row["login"] for row in paused["results"]] == [10004, 10007]
    assert [row["login"] for row in one["results"]] == [10003]
    assert [row["login"] for row in by_errors["results"][:3]] == [10004, 10007, 10001]
    balances = [Decimal(row["balance"]) for row in by_balance["results"]]
    assert balances == sorted(balances, reverse=True)


@pytest.mark.parametrize("query", [{"status": "sleeping"}, {"login": "abc"}, {"login": "0"}])
def test_a_bad_filter_is_a_400(query, watched, admin_api):
    assert admin_api.get(ACCOUNTS, query).status_code == 400


def test_the_list_costs_the_same_queries_whatever_the_page_size(watched, admin_api):
    def queries(page_size):
        with CaptureQueriesContext(connection) as captured:
            response = admin_api.get(ACCOUNTS, {"page_size": page_size})
        assert len(response.json()["results"]) == page_size
        return len(captured)

    assert queries(2) == queries(10)


def test_one_monitored_account_reads_by_login_and_an_unwatched_one_is_a_404(watched, admin_api):
    assert admin_api.get(f"{ACCOUNTS}10002/").json()["login"] == 10002

    response = admin_api.get(f"{ACCOUNTS}99999/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_monitored"


# --- Register and reset -----------------------------------------------------------------------


def test_a_super_admin_registers_a_login_of_the_server_by_hand(mt5, account, make_user, as_user):
    login = account(balance="300.00")
    admin = make_user(role=Role.SUPER_ADMIN)

    response = as_user(admin).post(f"{ACCOUNTS}{login}/register/")

    assert response.status_code == 200
    assert response.json()["login"] == login
    assert response.json()["status"] == "active"
    assert MonitoredAccount.objects.filter(login=login).exists()
    event = AuditEvent.objects.get(action="monitor.registered")
    assert (event.actor_id, event.mt5_login) == (admin.pk, login)


def test_registering_a_monitored_login_again_answers_the_same_row(watched, admin_api):
    first = admin_api.post(f"{ACCOUNTS}10001/register/").json()
    again = admin_api.post(f"{ACCOUNTS}10001/register/")

    assert again.status_code == 200
    assert again.json() == first
    assert MonitoredAccount.objects.filter(login=10001).count() == 1


def test_registering_a_login_the_server_does_not_know_is_a_404(mt5, admin_api):
    response = admin_api.post(f"{ACCOUNTS}99999/register/")

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
    assert not MonitoredAccount.objects.exists()


def test_login_zero_is_a_400(mt5, admin_api):
    response = admin_api.post(f"{ACCOUNTS}0/register/")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_login"


def test_reset_errors_resumes_a_paused_account_with_no_errors(watched, admin_api):
    pause(10003)

    response = admin_api.post(f"{ACCOUNTS}10003/reset-errors/")

    assert response.status_code == 200
    row = response.json()
    assert (row["login"], row["status"], row["consecutive_errors"], row["last_error"]) == (
        10003,
        "active",
        0,
        "",
    )
    assert MonitoredAccount.objects.get(login=10003).status == MonitoredAccount.Status.ACTIVE
    assert AuditEvent.objects.filter(action="monitor.errors_reset", mt5_login=10003).exists()


def test_reset_errors_of_an_unmonitored_login_is_a_404(mt5, admin_api):
    response = admin_api.post(f"{ACCOUNTS}10003/reset-errors/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_monitored"


# --- Test deals -------------------------------------------------------------------------------


def test_a_test_deposit_posts_a_balance_deal_on_the_server(watched, admin_api):
    before = server(10001).balance

    response = admin_api.post(f"{ACCOUNTS}10001/test-deposit/", {"amount": "250.50"}, "json")

    assert response.status_code == 201
    deal_id = response.json()["deal_id"]
    assert isinstance(deal_id, int)
    assert SimulatedMT5Deal.objects.get(ticket=deal_id).profit == Decimal("250.50")
    assert server(10001).balance == before + Decimal("250.50")


def test_a_test_withdrawal_takes_the_amount_off_the_balance(watched, admin_api):
    before = server(10001).balance

    response = admin_api.post(f"{ACCOUNTS}10001/test-withdraw/", {"amount": "100.00"}, "json")

    assert response.status_code == 201
    assert SimulatedMT5Deal.objects.get(ticket=response.json()["deal_id"]).profit == Decimal(
        "-100.00"
    )
    assert server(10001).balance == before - Decimal("100.00")


def test_a_withdrawal_beyond_the_balance_is_a_409_insufficient_balance(watched, admin_api):
    balance = server(10001).balance

    response = admin_api.post(
        f"{ACCOUNTS}10001/test-withdraw/", {"amount": f"{balance + 1:.2f}"}, "json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_balance"
    assert server(10001).balance == balance


@pytest.mark.parametrize("path", ["test-deposit", "test-withdraw"])
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"amount": "0"},
        {"amount": "0.00"},
        {"amount": "-5"},
        {"amount": "abc"},
        {"amount": "1.234"},
    ],
    ids=["missing", "zero", "zero-2dp", "negative", "text", "three-dp"],
)
def test_a_bad_amount_is_a_400_and_posts_nothing(path, body, watched, admin_api):
    deals_before = SimulatedMT5Deal.objects.count()

    response = admin_api.post(f"{ACCOUNTS}10001/{path}/", body, "json")

    assert response.status_code == 400
    assert "amount" in response.json()
    assert SimulatedMT5Deal.objects.count() == deals_before


@pytest.mark.parametrize("path", ["test-deposit", "test-withdraw"])
def test_a_test_deal_on_an_unmonitored_login_is_a_404(path, mt5, account, admin_api):
    login = account(balance="500.00")

    response = admin_api.post(f"{ACCOUNTS}{login}/{path}/", {"amount": "10.00"}, "json")

    assert response.status_code == 404
    assert response.json()["code"] == "not_monitored"


# --- The sweep --------------------------------------------------------------------------------


def test_the_sweep_detects_a_test_deposit_and_the_campaign_grants_its_bonus(
    watched, admin_api, campaign_factory
):
    campaign_factory(bonus_type="A", percentage="50", trigger_type="auto_deposit")
    credit_before = server(10001).credit
    deal_id = admin_api.post(f"{ACCOUNTS}10001/test-deposit/", {"amount": "200.00"}, "json").json()[
        "deal_id"
    ]

    response = admin_api.post(SWEEP)

    assert response.status_code == 200
    result = response.json()
    assert set(result) >= SWEEP_FIELDS
    assert (result["accounts"], result["deposits"], result["errors"]) == (10, 1, 0)
    assert result["dispatched"] >= 1
    [bonus] = Bonus.objects.filter(login=10001)
    assert (bonus.amount, bonus.deposit_deal_id) == (Decimal("100.00"), deal_id)
    assert server(10001).credit == credit_before + Decimal("100.00")
    assert admin_api.post(SWEEP).json()["deposits"] == 0
    assert Bonus.objects.filter(login=10001).count() == 1


def test_a_test_withdrawal_is_swept_as_a_withdrawal(watched, admin_api):
    admin_api.post(f"{ACCOUNTS}10002/test-withdraw/", {"amount": "50.00"}, "json")

    result = admin_api.post(SWEEP).json()

    assert (result["withdrawals"], result["deposits"]) == (1, 0)
    assert AccountEvent.objects.get(login=10002).kind == AccountEvent.Kind.WITHDRAWAL
