"""The trigger endpoints: deposit, registration, promo code; Super Admin and integration keys."""

from decimal import Decimal

import pytest

from accounts.roles import Role
from accounts.services import api_key_create
from bonuses.models import Bonus
from tests.bonuses.test_api_bonuses import CALLERS, caller, expected_status

pytestmark = pytest.mark.django_db

TRIGGERERS = [Role.SUPER_ADMIN.value, "api_key"]


@pytest.fixture
def client_as(api, make_user, as_user):
    return lambda kind: caller(kind, api=api, make_user=make_user, as_user=as_user)


def test_a_deposit_grants_each_matching_campaign_and_answers_the_bonuses(
    mt5, account, campaign_factory, client_as, deposit_deal
):
    login = account(balance="1000.00", leverage=500)
    deal = deposit_deal(login)
    first = campaign_factory(bonus_type="A", percentage="50", stacking="stackable")
    second = campaign_factory(bonus_type="B", percentage="10", stacking="stackable")
    campaign_factory(trigger_type="promo_code", promo_code="NOPE")  # not a deposit campaign
    response = client_as("api_key").post(
        "/api/v1/triggers/deposit/",
        {"login": login, "amount": "1000.00", "deal_id": deal},
        format="json",
    )
    assert response.status_code == 200, response.content
    bonuses = response.json()["bonuses"]
    assert sorted((b["campaign"], b["amount"]) for b in bonuses) == [
        (first.pk, "500.00"),
        (second.pk, "100.00"),
    ]
    assert {b["deposit_deal_id"] for b in bonuses} == {deal}
    assert mt5.get_accounts([login])[login].credit == Decimal("600.00")


def test_the_same_deal_sent_twice_grants_once(
    mt5, account, campaign_factory, client_as, deposit_deal
):
    login = account()
    campaign_factory()
    api = client_as(Role.SUPER_ADMIN.value)
    body = {"login": login, "amount": "1000.00", "deal_id": deposit_deal(login)}
    first = api.post("/api/v1/triggers/deposit/", body, format="json").json()["bonuses"]
    second = api.post("/api/v1/triggers/deposit/", body, format="json").json()["bonuses"]
    assert [b["id"] for b in second] == [b["id"] for b in first]
    assert Bonus.objects.count() == 1


def test_a_deposit_no_campaign_wants_answers_an_empty_list(mt5, account, client_as):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/triggers/deposit/",
        {"login": account(balance="10.00"), "amount": "10.00"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {"bonuses": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"login": 1, "amount": "abc"}, "amount"),
        ({"login": 1, "amount": "-100.00"}, "amount"),
        ({"login": 1, "amount": "0"}, "amount"),
        ({"login": 1, "amount": "10.999"}, "amount"),
        ({"login": 1, "amount": "Infinity"}, "amount"),
        ({"login": 1}, "amount"),
        ({"login": "abc", "amount": "10.00"}, "login"),
        ({"login": 0, "amount": "10.00"}, "login"),
        ({"amount": "10.00"}, "login"),
        ({"login": 1, "amount": "10.00", "deal_id": "x"}, "deal_id"),
        ({"login": 1, "amount": "10.00", "deal_id": -1}, "deal_id"),
        ({"login": 1, "amount": "10.00", "deal_id": 10**30}, "deal_id"),
    ],
)
def test_bad_deposit_input_is_a_400_naming_the_field(body, field, client_as):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/triggers/deposit/", body, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()


def test_a_deposit_that_is_not_json_is_a_400(client_as):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/triggers/deposit/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400


def test_registration_grants_the_fixed_amount(mt5, account, campaign_factory, client_as):
    login = account()
    campaign = campaign_factory(bonus_type="B", trigger_type="registration", fixed_amount="50")
    response = client_as("api_key").post(
        "/api/v1/triggers/registration/", {"login": login}, format="json"
    )
    assert response.status_code == 200, response.content
    [bonus] = response.json()["bonuses"]
    assert (bonus["campaign"], bonus["amount"], bonus["trigger"]) == (
        campaign.pk,
        "50.00",
        "registration",
    )


def test_registration_of_a_bad_login_is_a_400(client_as):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/triggers/registration/", {"login": "ten"}, format="json"
    )
    assert response.status_code == 400
    assert "login" in response.json()


def test_a_promo_code_grants_its_campaign_with_201(mt5, account, campaign_factory, client_as):
    login = account(balance="500.00")
    campaign = campaign_factory(
        bonus_type="B", trigger_type="promo_code", promo_code="SPRING", percentage="20"
    )
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/triggers/promo-code/",
        {"login": login, "code": "spring", "deposit_amount": "500.00"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["campaign"], body["amount"], body["trigger"]) == (
        campaign.pk,
        "100.00",
        "promo_code",
    )


def test_an_unknown_promo_code_is_a_400_invalid_promo_code(mt5, account, client_as):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/triggers/promo-code/",
        {"login": account(), "code": "NOSUCH", "deposit_amount": "100.00"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_promo_code"


def test_an_ineligible_promo_code_is_a_409_with_every_failure(
    mt5, account, campaign_factory, client_as
):
    login = account(country="Cyprus", balance="100.00")
    campaign_factory(
        trigger_type="promo_code",
        promo_code="DE",
        target_countries=["Germany"],
        min_deposit="1000.00",
    )
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/triggers/promo-code/",
        {"login": login, "code": "DE", "deposit_amount": "100.00"},
        format="json",
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "ineligible"
    assert sorted(f["code"] for f in body["failures"]) == ["country_mismatch", "deposit_below_min"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"login": 1}, "code"),
        ({"login": 1, "code": "x" * 65}, "code"),
        ({"login": 1, "code": "A", "deposit_amount": "-1"}, "deposit_amount"),
        ({"code": "A"}, "login"),
    ],
)
def test_bad_promo_code_input_is_a_400_naming_the_field(body, field, client_as):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/triggers/promo-code/", body, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("kind", [*CALLERS, "api_key"])
@pytest.mark.parametrize("path", ["deposit", "registration", "promo-code"])
def test_only_super_admin_and_integration_keys_send_triggers(kind, path, client_as):
    # Bad input on purpose: an allowed caller gets past the role check to the 400.
    response = client_as(kind).post(f"/api/v1/triggers/{path}/", {"login": "x"}, format="json")
    assert response.status_code == expected_status(kind, TRIGGERERS, ok=400)


def test_a_key_of_a_support_agent_may_trigger_as_an_integration(api, make_user):
    _, raw = api_key_create(
        user=make_user(role=Role.SUPPORT_AGENT), name="CRM", scopes=["triggers"]
    )
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = api.post("/api/v1/triggers/deposit/", {"login": "x"}, format="json")
    assert response.status_code == 400
