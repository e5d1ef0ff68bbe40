"""Eligibility, manual assign with override, and a Super Admin's interventions, over the API."""

from decimal import Decimal

import pytest

from accounts.models import AuditEvent
from accounts.roles import Role
from accounts.services import api_key_create
from bonuses.models import Bonus
from tests.bonuses.test_api_bonuses import CALLERS, caller, expected_status, make_bonus

pytestmark = pytest.mark.django_db

ASSIGNERS = [Role.SUPER_ADMIN.value, Role.SUPPORT_AGENT.value]
MANAGERS = [Role.SUPER_ADMIN.value]


@pytest.fixture
def client_as(api, make_user, as_user):
    return lambda kind: caller(kind, api=api, make_user=make_user, as_user=as_user)


@pytest.fixture
def mismatched(mt5, account, campaign_factory, deposit_deal):
    """An account that fails three overridable rules of an active campaign, and its 100.00
    deposit deal."""
    login = account(group="real\\standard", country="Cyprus", balance="100.00")
    campaign = campaign_factory(
        target_groups=["real\\vip"], target_countries=["Germany"], min_deposit="500.00"
    )
    return login, campaign, deposit_deal(login)


def codes(body):
    return sorted(failure["code"] for failure in body["failures"])


def test_check_eligibility_answers_every_failure_with_its_overridable_flag(mismatched, client_as):
    login, campaign, _deal = mismatched
    response = client_as(Role.SUPPORT_AGENT.value).post(
        "/api/v1/bonuses/check-eligibility/",
        {"login": login, "campaign_id": campaign.pk, "deposit_amount": "100.00"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["eligible"] is False
    assert codes(body) == ["country_mismatch", "deposit_below_min", "group_mismatch"]
    assert all(set(f) == {"code", "message", "overridable"} for f in body["failures"])
    assert all(f["overridable"] for f in body["failures"])
    assert not Bonus.objects.exists()


def test_check_eligibility_of_an_eligible_account_is_eligible_with_no_failures(
    mt5, account, campaign_factory, client_as
):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/bonuses/check-eligibility/",
        {"login": account(), "campaign_id": campaign_factory().pk},
        format="json",
    )
    assert response.json() == {"eligible": True, "failures": []}


def test_check_eligibility_reports_a_missing_account_as_not_overridable(
    mt5, campaign_factory, client_as
):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/bonuses/check-eligibility/",
        {"login": 424242, "campaign_id": campaign_factory().pk},
        format="json",
    )
    assert response.json()["failures"] == [
        {
            "code": "account_not_found",
            "message": "MT5 account 424242 does not exist.",
            "overridable": False,
        }
    ]


def test_assign_grants_the_bonus_and_answers_201_with_it(
    mt5, account, campaign_factory, client_as, deposit_deal
):
    login = account(balance="1000.00", leverage=500)
    campaign = campaign_factory(bonus_type="A", percentage="50")
    response = client_as(Role.SUPPORT_AGENT.value).post(
        "/api/v1/bonuses/assign/",
        {
            "login": login,
            "campaign_id": campaign.pk,
            "deposit_amount": "1000.00",
            "deal_id": deposit_deal(login),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["login"], body["campaign"], body["trigger"]) == (login, campaign.pk, "manual")
    assert (body["amount"], body["status"]) == ("500.00", "active")
    assert body["adjusted_leverage"] == 333
    assert mt5.get_accounts([login])[login].credit == Decimal("500.00")


def test_an_ineligible_assign_is_a_409_carrying_every_failure(mismatched, client_as):
    login, campaign, deal = mismatched
    response = client_as(Role.SUPPORT_AGENT.value).post(
        "/api/v1/bonuses/assign/",
        {"login": login, "campaign_id": campaign.pk, "deposit_amount": "100.00", "deal_id": deal},
        format="json",
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "ineligible"
    assert body["detail"]
    assert codes(body) == ["country_mismatch", "deposit_below_min", "group_mismatch"]
    assert not Bonus.objects.exists()


def test_override_assigns_despite_overridable_failures_and_records_why(mismatched, client_as):
    login, campaign, deal = mismatched
    response = client_as(Role.SUPPORT_AGENT.value).post(
        "/api/v1/bonuses/assign/",
        {
            "login": login,
            "campaign_id": campaign.pk,
            "deposit_amount": "100.00",
            "deal_id": deal,
            "override_eligibility": True,
            "reason": "VIP approved by desk",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    bonus = Bonus.objects.get(pk=response.json()["id"])
    assert bonus.status == Bonus.Status.ACTIVE
    assert bonus.amount == Decimal("50.00")
    assert bonus.override_reason == "VIP approved by desk"
    assert response.json()["override_reason"] == "VIP approved by desk"


def test_a_non_overridable_failure_blocks_even_with_override(
    mt5, account, campaign_factory, client_as, deposit_deal
):
    login = account(country="Cyprus")
    paused = campaign_factory(status="paused", target_countries=["Germany"])
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/bonuses/assign/",
        {
            "login": login,
            "campaign_id": paused.pk,
            "deal_id": deposit_deal(login),
            "override_eligibility": True,
            "reason": "try anyway",
        },
        format="json",
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "ineligible"
    assert codes(body) == ["campaign_status", "country_mismatch"]
    assert not Bonus.objects.exists()


def test_an_unknown_account_blocks_even_with_override(mt5, campaign_factory, client_as):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/bonuses/assign/",
        {
            "login": 424242,
            "campaign_id": campaign_factory().pk,
            "deposit_amount": "100.00",
            "deal_id": 1,
            "override_eligibility": True,
        },
        format="json",
    )
    assert response.status_code == 409
    assert codes(response.json()) == ["account_not_found"]


def test_an_api_key_assign_says_which_key_in_the_reason(mismatched, api, make_user):
    login, campaign, deal = mismatched
    api_key, raw = api_key_create(user=make_user(role=Role.SUPER_ADMIN), name="desk tool")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = api.post(
        "/api/v1/bonuses/assign/",
        {
            "login": login,
            "campaign_id": campaign.pk,
            "deal_id": deal,
            "override_eligibility": True,
            "reason": "desk",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    bonus = Bonus.objects.get(pk=response.json()["id"])
    assert bonus.override_reason == f"desk (via API key {api_key.prefix})"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"login": "abc", "campaign_id": 1}, "login"),
        ({"login": -3, "campaign_id": 1}, "login"),
        ({"login": 1.5, "campaign_id": 1}, "login"),
        ({"login": 10**30, "campaign_id": 1}, "login"),
        ({"campaign_id": 1}, "login"),
        ({"login": 1, "campaign_id": 999999}, "campaign_id"),
        ({"login": 1, "campaign_id": "x"}, "campaign_id"),
        ({"login": 1, "campaign_id": 10**30}, "campaign_id"),
        ({"login": 1}, "campaign_id"),
        ({"login": 1, "campaign_id": 1, "deposit_amount": "abc"}, "deposit_amount"),
        ({"login": 1, "campaign_id": 1, "deposit_amount": "-5.00"}, "deposit_amount"),
        ({"login": 1, "campaign_id": 1, "deposit_amount": "0"}, "deposit_amount"),
        ({"login": 1, "campaign_id": 1, "deposit_amount": "1.001"}, "deposit_amount"),
        ({"login": 1, "campaign_id": 1, "deposit_amount": "NaN"}, "deposit_amount"),
        ({"login": 1, "campaign_id": 1, "deposit_amount": "1e20"}, "deposit_amount"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/bonuses/check-eligibility/", "/api/v1/bonuses/assign/"])
def test_bad_assign_input_is_a_400_naming_the_field(
    path, body, field, mt5, campaign_factory, client_as
):
    campaign = campaign_factory()
    body = {k: (campaign.pk if k == "campaign_id" and v == 1 else v) for k, v in body.items()}
    response = client_as(Role.SUPER_ADMIN.value).post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_an_override_flag_that_is_not_a_boolean_is_a_400(mt5, campaign_factory, client_as):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/bonuses/assign/",
        {"login": 1, "campaign_id": campaign_factory().pk, "override_eligibility": "maybe"},
        format="json",
    )
    assert response.status_code == 400
    assert "override_eligibility" in response.json()


@pytest.mark.parametrize("kind", [*CALLERS, "api_key"])
@pytest.mark.parametrize("path", ["/api/v1/bonuses/check-eligibility/", "/api/v1/bonuses/assign/"])
def test_only_super_admin_and_support_agent_check_and_assign(
    kind, path, mt5, campaign_factory, client_as
):
    # Bad input on purpose: an allowed caller gets past the role check to the 400.
    response = client_as(kind).post(path, {"login": "x"}, format="json")
    assert response.status_code == expected_status(kind, ASSIGNERS, ok=400)


# --- Cancel, force-convert, override leverage ------------------------------------------------


@pytest.fixture
def granted(mt5, account, campaign_factory, client_as, deposit_deal):
    """`granted(bonus_type) -> Bonus`: a bonus granted through the API on a 1,000 deposit."""

    def make(bonus_type="A", **campaign_fields):
        login = account(balance="1000.00", leverage=500)
        campaign = campaign_factory(bonus_type=bonus_type, **campaign_fields)
        response = client_as(Role.SUPER_ADMIN.value).post(
            "/api/v1/bonuses/assign/",
            {"login": login, "campaign_id": campaign.pk, "deal_id": deposit_deal(login)},
            format="json",
        )
        assert response.status_code == 201, response.content
        return Bonus.objects.get(pk=response.json()["id"])

    return make


def test_cancel_removes_the_credit_restores_leverage_and_answers_the_bonus(granted, mt5, client_as):
    bonus = granted("A")
    response = client_as(Role.SUPER_ADMIN.value).post(
        f"/api/v1/bonuses/{bonus.pk}/cancel/", {"reason": "client asked"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["cancel_reason"], body["credit_remaining"]) == (
        "cancelled",
        "client asked",
        "0.00",
    )
    account = mt5.get_accounts([bonus.login])[bonus.login]
    assert (account.credit, account.leverage) == (Decimal("0.00"), 500)
    events = client_as(Role.SUPER_ADMIN.value).get(f"/api/v1/bonuses/{bonus.pk}/").json()
    assert "bonus.cancelled" in [event["action"] for event in events["events"]]


def test_cancel_without_a_body_works(granted, client_as):
    bonus = granted("B")
    response = client_as(Role.SUPER_ADMIN.value).post(f"/api/v1/bonuses/{bonus.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_cancelling_twice_is_a_409(granted, client_as):
    bonus = granted("B")
    api = client_as(Role.SUPER_ADMIN.value)
    assert api.post(f"/api/v1/bonuses/{bonus.pk}/cancel/").status_code == 200
    second = api.post(f"/api/v1/bonuses/{bonus.pk}/cancel/")
    assert second.status_code == 409
    assert second.json()["code"]


def test_a_cancel_reason_over_160_characters_is_a_400(granted, client_as):
    bonus = granted("B")
    response = client_as(Role.SUPER_ADMIN.value).post(
        f"/api/v1/bonuses/{bonus.pk}/cancel/", {"reason": "x" * 161}, format="json"
    )
    assert response.status_code == 400
    assert "reason" in response.json()


def test_an_api_key_cancel_says_which_key_in_the_audit_reason(granted, api, make_user):
    bonus = granted("B")
    api_key, raw = api_key_create(user=make_user(role=Role.SUPER_ADMIN), name="ops")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.post(f"/api/v1/bonuses/{bonus.pk}/cancel/").status_code == 200
    event = AuditEvent.objects.get(
        object_type="bonuses.bonus", object_id=str(bonus.pk), action="bonus.cancelled"
    )
    assert f"via API key {api_key.prefix}" in event.reason


def test_force_convert_turns_type_c_credit_into_balance(granted, mt5, client_as):
    bonus = granted("C", percentage="20")  # 200.00
    response = client_as(Role.SUPER_ADMIN.value).post(f"/api/v1/bonuses/{bonus.pk}/force-convert/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["converted_amount"], body["progress_pct"]) == (
        "converted",
        "200.00",
        "100.00",
    )
    account = mt5.get_accounts([bonus.login])[bonus.login]
    assert (account.balance, account.credit) == (Decimal("1200.00"), Decimal("0.00"))


def test_force_convert_of_a_type_a_bonus_is_a_409_not_type_c(granted, client_as):
    bonus = granted("A")
    response = client_as(Role.SUPER_ADMIN.value).post(f"/api/v1/bonuses/{bonus.pk}/force-convert/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_type_c"


def test_override_leverage_sets_the_type_a_accounts_leverage(granted, mt5, client_as):
    bonus = granted("A")
    response = client_as(Role.SUPER_ADMIN.value).post(
        f"/api/v1/bonuses/{bonus.pk}/override-leverage/", {"leverage": 200}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["adjusted_leverage"] == 200
    assert mt5.get_accounts([bonus.login])[bonus.login].leverage == 200


def test_override_leverage_of_a_type_b_bonus_is_a_409_not_type_a(granted, client_as):
    bonus = granted("B")
    response = client_as(Role.SUPER_ADMIN.value).post(
        f"/api/v1/bonuses/{bonus.pk}/override-leverage/", {"leverage": 200}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "not_type_a"


@pytest.mark.parametrize("leverage", ["abc", 0, -1, 1.5, 10**12, None, True])
def test_a_bad_leverage_is_a_400(leverage, campaign_factory, client_as):
    bonus = make_bonus(campaign_factory(bonus_type="A"))
    response = client_as(Role.SUPER_ADMIN.value).post(
        f"/api/v1/bonuses/{bonus.pk}/override-leverage/", {"leverage": leverage}, format="json"
    )
    assert response.status_code == 400
    assert "leverage" in response.json()


@pytest.mark.parametrize("action", ["cancel", "force-convert", "override-leverage"])
def test_an_action_on_an_unknown_bonus_is_a_404(action, client_as):
    response = client_as(Role.SUPER_ADMIN.value).post(
        f"/api/v1/bonuses/999999/{action}/", {"leverage": 100}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "bonus_not_found"


@pytest.mark.parametrize("kind", [*CALLERS, "api_key"])
@pytest.mark.parametrize("action", ["cancel", "force-convert", "override-leverage"])
def test_only_super_admin_cancels_converts_and_overrides(kind, action, campaign_factory, client_as):
    # A Type B bonus that does not exist on any server: an allowed caller reaches the
    # service's refusal (409), everyone else stops at the role check.
    bonus = make_bonus(campaign_factory(bonus_type="B"), status=Bonus.Status.CANCELLED)
    response = client_as(kind).post(
        f"/api/v1/bonuses/{bonus.pk}/{action}/", {"leverage": 100}, format="json"
    )
    assert response.status_code == expected_status(kind, MANAGERS, ok=409)


def test_assigning_a_deposit_campaign_without_a_deposit_amount_is_a_400_with_a_code(
    mt5, account, campaign_factory, client_as
):
    response = client_as(Role.SUPER_ADMIN.value).post(
        "/api/v1/bonuses/assign/",
        {"login": account(), "campaign_id": campaign_factory(percentage="50").pk},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bonus_amount_zero"
    assert not Bonus.objects.exists()
