"""The audit trail API and the MT5 account lookup and metadata."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.roles import Role
from accounts.services import api_key_create, audit_record
from tests.bonuses.test_api_bonuses import CALLERS, STAFF, caller, expected_status, make_bonus

pytestmark = pytest.mark.django_db

AUDIT_READERS = [Role.SUPER_ADMIN.value, Role.READ_ONLY.value]


@pytest.fixture
def client_as(api, make_user, as_user):
    return lambda kind: caller(kind, api=api, make_user=make_user, as_user=as_user)


@pytest.fixture
def trail(campaign_factory, make_user):
    """Events of two campaigns' bonuses, one campaign event, one account-only event."""
    staff = make_user(role=Role.SUPER_ADMIN, email="boss@example.com")
    first, second = campaign_factory(), campaign_factory()
    granted = make_bonus(first, login=1)
    other = make_bonus(second, login=2)
    start = timezone.now() - timedelta(days=10)
    with time_machine.travel(start, tick=False):
        audit_record(action="bonus.granted", obj=granted, mt5_login=1, after={"amount": "500.00"})
    with time_machine.travel(start + timedelta(days=5), tick=False):
        audit_record(
            action="bonus.cancelled",
            obj=granted,
            actor=staff,
            mt5_login=1,
            before={"status": "active"},
            after={"status": "cancelled"},
            reason="client asked",
        )
    audit_record(action="bonus.granted", obj=other, mt5_login=2)
    audit_record(action="campaign.activated", obj=first, actor=staff)
    audit_record(action="account.drawdown", object_type="mt5.account", object_id=2, mt5_login=2)
    return {"staff": staff, "first": first, "granted": granted, "other": other, "start": start}


def actions(response):
    assert response.status_code == 200, response.content
    return [row["action"] for row in response.json()["results"]]


def test_the_audit_list_answers_the_contract_fields_newest_first(trail, client_as):
    response = client_as(Role.READ_ONLY.value).get("/api/v1/audit/")
    rows = response.json()["results"]
    assert actions(response)[-2:] == ["bonus.cancelled", "bonus.granted"]
    cancelled = next(row for row in rows if row["action"] == "bonus.cancelled")
    assert set(cancelled) >= {
        "id",
        "at",
        "actor",
        "action",
        "login",
        "bonus",
        "campaign",
        "before",
        "after",
        "reason",
    }
    assert cancelled["actor"] == "boss@example.com"
    assert cancelled["login"] == 1
    assert cancelled["bonus"] == trail["granted"].pk
    assert cancelled["campaign"] == trail["first"].pk
    assert cancelled["before"] == {"status": "active"}
    assert cancelled["reason"] == "client asked"
    activated = next(row for row in rows if row["action"] == "campaign.activated")
    assert (activated["campaign"], activated["bonus"], activated["login"]) == (
        trail["first"].pk,
        None,
        None,
    )


def test_the_audit_list_leaves_out_events_outside_the_bonus_domain(trail, client_as, make_user):
    api_key_create(user=make_user(), name="CRM")  # an api_key.created event
    assert "api_key.created" not in actions(client_as(Role.SUPER_ADMIN.value).get("/api/v1/audit/"))


def test_the_audit_list_filters_by_login_bonus_campaign_action_actor_and_time(trail, client_as):
    api = client_as(Role.SUPER_ADMIN.value)
    get = lambda query: sorted(actions(api.get(f"/api/v1/audit/?{query}")))  # noqa: E731
    assert get("login=2") == ["account.drawdown", "bonus.granted"]
    assert get(f"bonus={trail['granted'].pk}") == ["bonus.cancelled", "bonus.granted"]
    assert get(f"campaign={trail['first'].pk}") == [
        "bonus.cancelled",
        "bonus.granted",
        "campaign.activated",
    ]
    assert get("action=bonus.cancelled") == ["bonus.cancelled"]
    assert get("actor=boss@example.com") == ["bonus.cancelled", "campaign.activated"]
    assert get(f"actor={trail['staff'].pk}") == ["bonus.cancelled", "campaign.activated"]
    assert get("actor=system&login=1") == ["bonus.granted"]
    since = (trail["start"] + timedelta(days=1)).isoformat()
    until = (trail["start"] + timedelta(days=6)).isoformat()
    assert get(f"login=1&since={since.replace('+', '%2B')}") == ["bonus.cancelled"]
    assert get(f"login=1&until={until.replace('+', '%2B')}") == [
        "bonus.cancelled",
        "bonus.granted",
    ]


@pytest.mark.parametrize(
    "query", ["login=abc", "login=1.5", "bonus=x", "campaign=1.5", "campaign=-2", "since=monday"]
)
def test_a_bad_audit_filter_is_a_400(query, client_as):
    assert client_as(Role.SUPER_ADMIN.value).get(f"/api/v1/audit/?{query}").status_code == 400


def test_the_audit_list_makes_the_same_few_queries_however_many_events(
    campaign_factory, client_as, django_assert_max_num_queries
):
    campaign = campaign_factory()
    for n in range(25):
        bonus = make_bonus(campaign, login=n + 1)
        audit_record(action="bonus.granted", obj=bonus, mt5_login=n + 1)
    api = client_as(Role.SUPER_ADMIN.value)
    with django_assert_max_num_queries(6):
        response = api.get("/api/v1/audit/?page_size=100")
    assert {row["campaign"] for row in response.json()["results"]} == {campaign.pk}


@pytest.mark.parametrize("kind", [*CALLERS, "api_key"])
def test_only_super_admin_and_read_only_read_the_audit_trail(kind, client_as):
    assert client_as(kind).get("/api/v1/audit/").status_code == expected_status(kind, AUDIT_READERS)


# --- MT5 ------------------------------------------------------------------------------------


def test_the_metadata_lists_groups_countries_and_accounts(mt5, account, client_as):
    first = account(name="Ann", group="real\\vip", country="Germany")
    second = account(name="Bob", group="real\\standard", country="Cyprus")
    response = client_as(Role.SUPPORT_AGENT.value).get("/api/v1/mt5/metadata/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"groups", "countries", "accounts"}
    assert {"real\\vip", "real\\standard"} <= set(body["groups"])
    assert {"Germany", "Cyprus"} <= set(body["countries"])
    accounts = {row["login"]: row for row in body["accounts"]}
    assert accounts[first] == {
        "login": first,
        "name": "Ann",
        "group": "real\\vip",
        "country": "Germany",
    }
    assert accounts[second]["name"] == "Bob"


def test_the_account_lookup_shows_live_state_bonuses_and_audit(
    mt5, account, campaign_factory, client_as
):
    login = account(
        balance="1000.00", credit="500.00", leverage=333, lead_source="IB42", name="Ann"
    )
    bonus = make_bonus(campaign_factory(), login=login)
    make_bonus(campaign_factory(), login=login + 1)
    audit_record(action="bonus.granted", obj=bonus, mt5_login=login, after={"amount": "500.00"})

    response = client_as(Role.CAMPAIGN_MANAGER.value).get(f"/api/v1/mt5/accounts/{login}/")
    assert response.status_code == 200
    body = response.json()
    assert body["login"] == login
    assert (body["name"], body["lead_source"], body["leverage"]) == ("Ann", "IB42", 333)
    assert (body["balance"], body["credit"], body["equity"]) == ("1000.00", "500.00", "1500.00")
    assert body["monitoring"] == {
        "status": "unmonitored",
        "consecutive_errors": 0,
        "last_error": "",
        "last_polled_at": None,
    }
    assert [row["id"] for row in body["bonuses"]] == [bonus.pk]
    assert [row["action"] for row in body["audit"]] == ["bonus.granted"]
    assert body["audit"][0]["campaign"] == bonus.campaign_id


def test_an_unknown_login_is_a_404_account_not_found(mt5, client_as):
    response = client_as(Role.SUPER_ADMIN.value).get("/api/v1/mt5/accounts/987654/")
    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"


@pytest.mark.parametrize("login", ["abc", "-5", "0", "99999999999999999999999"])
def test_a_login_that_is_not_a_positive_integer_is_a_400(mt5, login, client_as):
    response = client_as(Role.SUPER_ADMIN.value).get(f"/api/v1/mt5/accounts/{login}/")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_login"


@pytest.mark.parametrize("kind", [*CALLERS, "api_key"])
def test_every_staff_role_looks_accounts_up_and_nobody_else(kind, mt5, account, client_as):
    login = account()
    api = client_as(kind)
    expected = expected_status(kind, STAFF)
    assert api.get("/api/v1/mt5/metadata/").status_code == expected
    assert api.get(f"/api/v1/mt5/accounts/{login}/").status_code == expected


def test_a_server_that_does_not_answer_is_a_503_not_a_500(client_as, monkeypatch):
    from bonuses.api import views
    from gateways.errors import TransientGatewayError

    def down(*args, **kwargs):
        raise TransientGatewayError("connection refused", gateway="mt5")

    monkeypatch.setattr(views, "mt5_metadata", down)
    monkeypatch.setattr(views, "account_lookup", down)
    api = client_as(Role.SUPER_ADMIN.value)
    for path in ("/api/v1/mt5/metadata/", "/api/v1/mt5/accounts/10001/"):
        response = api.get(path)
        assert response.status_code == 503
        assert response.json()["code"] == "gateway_unavailable"
