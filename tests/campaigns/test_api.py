"""The campaigns API: shapes, status codes, validation answers, filters, lifecycle, scan."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from campaigns.models import Campaign, MT5Scan
from gateways.models import SimulatorKnobs
from gateways.mt5.simulated import SimulatedMT5Gateway, seed_demo_accounts

from .conftest import payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns/"


def detail(campaign):
    return f"{URL}{campaign.pk}/"


# --- Create, read, list ---------------------------------------------------------------------


def test_a_campaign_is_created_in_draft_by_the_caller_with_money_as_strings(as_manager, manager):
    body = payload(
        name="Welcome",
        target_groups=["real\\std"],
        target_countries=["Chile"],
        agent_codes=["IB7"],
        starts_at="2030-01-01T00:00:00Z",
        ends_at="2030-02-01T00:00:00Z",
    )
    response = as_manager.post(URL, body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "draft"
    assert data["created_by"] == manager.pk
    assert (data["percentage"], data["max_bonus"]) == ("50.00", "500.00")
    assert (data["min_deposit"], data["max_deposit"]) == ("100.00", "10000.00")
    assert (data["convert_per_lot"], data["fixed_amount"], data["promo_code"]) == (None,) * 3
    assert data["target_groups"] == ["real\\std"]
    assert data["starts_at"] == "2030-01-01T00:00:00Z"
    assert data["is_live"] is False
    assert {"id", "one_per_account", "max_concurrent", "bonus_expiry_days"} <= set(data)
    assert {"created_at", "updated_at", "trigger_type", "bonus_type", "description"} <= set(data)
    assert Campaign.objects.get(pk=data["id"]).created_by == manager


def test_status_cannot_be_chosen_at_creation(as_manager):
    response = as_manager.post(URL, payload(status="active"), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "draft"


def test_the_list_is_paginated_and_newest_first(as_manager, make_campaign):
    first, second = make_campaign(), make_campaign()
    response = as_manager.get(URL, {"page_size": 1})
    data = response.json()
    assert response.status_code == 200
    assert set(data) == {"count", "next", "previous", "results"}
    assert data["count"] == 2
    assert [row["id"] for row in data["results"]] == [second.pk]
    assert first.pk


def test_an_unknown_or_non_numeric_id_is_404(as_manager):
    assert as_manager.get(f"{URL}999999/").status_code == 404
    assert as_manager.get(f"{URL}abc/").status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "active"}, {"active A"}),
        ({"bonus_type": "C"}, {"paused C"}),
        ({"trigger_type": "promo_code"}, {"promo B"}),
        ({"search": "vip"}, {"active A"}),  # description
        ({"search": "Paused"}, {"paused C"}),  # name, any case
        ({"search": "xmas"}, {"promo B"}),  # promo code
        ({"status": "draft", "bonus_type": "B"}, {"promo B"}),
    ],
)
def test_filters_and_search(as_manager, make_campaign, query, expected):
    make_campaign(name="active A", status="active", description="For VIP clients")
    make_campaign(name="paused C", status="paused", bonus_type="C", convert_per_lot=Decimal(5))
    make_campaign(name="promo B", bonus_type="B", trigger_type="promo_code", promo_code="XMAS")

    response = as_manager.get(URL, query)

    assert response.status_code == 200
    assert {row["name"] for row in response.json()["results"]} == expected


def test_an_unknown_filter_value_is_400(as_manager):
    assert as_manager.get(URL, {"status": "sleeping"}).status_code == 400


def test_the_list_takes_a_bounded_number_of_queries(
    as_manager, make_campaign, django_assert_max_num_queries
):
    for _ in range(30):
        make_campaign()
    # Authentication (user, roles), count, one page of rows: no query per campaign.
    with django_assert_max_num_queries(5):
        response = as_manager.get(URL, {"page_size": 100})
    assert len(response.json()["results"]) == 30


# --- Validation answers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"percentage": "0"}, "percentage"),
        ({"percentage": "-5"}, "percentage"),
        ({"percentage": "1000.01"}, "percentage"),
        ({"percentage": "abc"}, "percentage"),
        ({"min_deposit": "500", "max_deposit": "499.99"}, "max_deposit"),
        ({"min_deposit": "-1"}, "min_deposit"),
        ({"max_bonus": "0"}, "max_bonus"),
        ({"bonus_type": "C"}, "convert_per_lot"),
        ({"bonus_type": "C", "convert_per_lot": "0"}, "convert_per_lot"),
        ({"trigger_type": "registration"}, "fixed_amount"),
        ({"trigger_type": "registration", "fixed_amount": "-1"}, "fixed_amount"),
        ({"trigger_type": "promo_code"}, "promo_code"),
        ({"trigger_type": "promo_code", "promo_code": "no spaces"}, "promo_code"),
        ({"promo_code": "NOTPROMO"}, "promo_code"),
        ({"trigger_type": "agent_code"}, "agent_codes"),
        ({"agent_codes": "IB1"}, "agent_codes"),
        ({"agent_codes": ["IB1", " "]}, "agent_codes"),
        ({"target_groups": [1, 2]}, "target_groups"),
        ({"target_countries": [""]}, "target_countries"),
        ({"starts_at": "2030-02-01T00:00:00Z", "ends_at": "2030-02-01T00:00:00Z"}, "ends_at"),
        ({"starts_at": "2030-02-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"bonus_expiry_days": 0}, "bonus_expiry_days"),
        ({"bonus_type": "D"}, "bonus_type"),
        ({"trigger_type": "telepathy"}, "trigger_type"),
        ({"name": ""}, "name"),
    ],
)
def test_each_rule_is_a_400_naming_its_field(as_manager, overrides, field):
    response = as_manager.post(URL, payload(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Campaign.objects.exists()


def test_missing_required_fields_are_named(as_manager):
    response = as_manager.post(URL, {}, format="json")
    assert response.status_code == 400
    assert {"name", "bonus_type", "percentage"} <= set(response.json())


def test_a_valid_type_c_registration_and_agent_code_campaign_is_accepted(as_manager):
    for overrides in (
        {"bonus_type": "C", "convert_per_lot": "10.00"},
        {"trigger_type": "registration", "fixed_amount": "25"},
        {"trigger_type": "agent_code", "agent_codes": ["IB1", "IB1 "]},
        {"trigger_type": "promo_code", "promo_code": "WELCOME-2030"},
        {"percentage": "1000"},
    ):
        response = as_manager.post(URL, payload(**overrides), format="json")
        assert response.status_code == 201, (overrides, response.json())
    assert response.json()["percentage"] == "1000.00"


def test_a_taken_promo_code_in_another_case_is_a_400_promo_code_taken(as_manager):
    body = payload(trigger_type="promo_code", promo_code="SUMMER")
    assert as_manager.post(URL, body, format="json").status_code == 201

    response = as_manager.post(URL, {**body, "promo_code": "summer"}, format="json")

    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "promo_code_taken"
    assert data["promo_code"] == ["Another campaign already uses this code."]


def test_a_promo_code_can_be_reused_after_archiving(as_manager, make_campaign):
    old = make_campaign(status="ended", trigger_type="promo_code", promo_code="BACK")
    body = payload(trigger_type="promo_code", promo_code="back")
    assert as_manager.post(URL, body, format="json").status_code == 400

    as_manager.patch(f"{detail(old)}status/", {"status": "archived"}, format="json")

    assert as_manager.post(URL, body, format="json").status_code == 201


# --- PUT and PATCH --------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields(as_manager, make_campaign):
    campaign = make_campaign(description="keep me")
    response = as_manager.patch(detail(campaign), {"percentage": "75"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["percentage"] == "75.00"
    assert response.json()["description"] == "keep me"
    assert AuditEvent.objects.filter(action="campaign.updated").count() == 1


def test_put_replaces_the_campaign_and_needs_the_required_fields(as_manager, make_campaign):
    campaign = make_campaign()
    assert as_manager.put(detail(campaign), {"name": "x"}, format="json").status_code == 400

    body = payload(name="Replaced", bonus_type="B", percentage="20", max_deposit=None)
    response = as_manager.put(detail(campaign), body, format="json")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["name"], data["bonus_type"], data["max_deposit"]) == ("Replaced", "B", None)


def test_status_is_not_editable_through_put_or_patch(as_manager, make_campaign):
    campaign = make_campaign()
    response = as_manager.patch(detail(campaign), {"status": "active"}, format="json")
    assert response.status_code == 200
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_patch_is_checked_against_the_stored_campaign(as_manager, make_campaign):
    campaign = make_campaign(min_deposit=Decimal(100), max_deposit=Decimal(1000))
    response = as_manager.patch(detail(campaign), {"min_deposit": "2000"}, format="json")
    assert response.status_code == 400
    assert "max_deposit" in response.json()


def test_an_archived_campaign_cannot_be_edited(as_manager, make_campaign):
    campaign = make_campaign(status="archived")
    response = as_manager.patch(detail(campaign), {"name": "again"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "campaign_archived"


# --- Status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("draft", "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "ended"),
        ("paused", "ended"),
        ("ended", "archived"),
        ("draft", "archived"),
    ],
)
def test_every_allowed_transition_answers_200(as_manager, make_campaign, old, new):
    campaign = make_campaign(status=old)
    response = as_manager.patch(f"{detail(campaign)}status/", {"status": new}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == new
    campaign.refresh_from_db()
    assert campaign.status == new


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("draft", "paused"),
        ("draft", "ended"),
        ("active", "draft"),
        ("active", "archived"),
        ("active", "active"),
        ("paused", "archived"),
        ("ended", "active"),
        ("ended", "paused"),
        ("archived", "active"),
        ("archived", "draft"),
    ],
)
def test_a_forbidden_transition_is_409_invalid_transition(as_manager, make_campaign, old, new):
    campaign = make_campaign(status=old)
    response = as_manager.patch(f"{detail(campaign)}status/", {"status": new}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    campaign.refresh_from_db()
    assert campaign.status == old


def test_an_unknown_status_is_400(as_manager, make_campaign):
    campaign = make_campaign()
    response = as_manager.patch(f"{detail(campaign)}status/", {"status": "gone"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()


def test_activating_a_campaign_past_its_end_is_409_campaign_ended(as_manager, make_campaign):
    campaign = make_campaign(ends_at=timezone.now() - timedelta(minutes=1))
    response = as_manager.patch(f"{detail(campaign)}status/", {"status": "active"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "campaign_ended"


# --- Duplicate ------------------------------------------------------------------------------


def test_duplicate_answers_201_with_a_draft_copy(as_manager, manager, make_campaign):
    source = make_campaign(
        name="Spring", status="active", trigger_type="promo_code", promo_code="SPRING"
    )
    response = as_manager.post(f"{detail(source)}duplicate/")

    assert response.status_code == 201
    data = response.json()
    assert (data["name"], data["status"], data["created_by"]) == (
        "Spring (copy)",
        "draft",
        manager.pk,
    )
    assert data["promo_code"] is None  # the source still holds it
    assert data["id"] != source.pk
    assert data["percentage"] == "50.00"


# --- Scan MT5 -------------------------------------------------------------------------------


def test_scan_mt5_answers_and_stores_the_servers_groups_and_countries(as_manager):
    seed_demo_accounts()
    server = SimulatedMT5Gateway()

    response = as_manager.post(f"{URL}scan-mt5/")

    assert response.status_code == 200
    data = response.json()
    assert data["groups"] == server.list_groups() != []
    assert data["countries"] == server.list_countries() != []
    scan = MT5Scan.objects.get()
    assert (scan.groups, scan.countries) == (data["groups"], data["countries"])


def test_scan_mt5_when_the_server_is_down_is_503_not_500(as_manager):
    SimulatorKnobs.objects.create(server="mt5", error_rate=1)
    response = as_manager.post(f"{URL}scan-mt5/")
    assert response.status_code == 503
    assert response.json()["code"] == "gateway_unavailable"
    assert not MT5Scan.objects.exists()


def test_the_openapi_schema_describes_every_campaign_path(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    for path in (
        "/api/v1/campaigns/",
        "/api/v1/campaigns/{id}/",
        "/api/v1/campaigns/{id}/status/",
        "/api/v1/campaigns/{id}/duplicate/",
        "/api/v1/campaigns/scan-mt5/",
    ):
        assert path.encode() in schema.content
