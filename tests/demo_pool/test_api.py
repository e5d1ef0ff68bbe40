import pytest

from accounts.roles import Role
from demo_pool.models import DemoAccount

pytestmark = pytest.mark.django_db

ACTIVATE = "/api/v1/demo/press-pass/activate/"
STATUS = "/api/v1/demo/pool/status/"
REPLENISH = "/api/v1/demo/pool/replenish/?count=3"
RESEND = "/api/v1/demo/accounts/resend-credentials/"
BODY = {"user_id": "42", "real_name": "Jane Doe", "delivery_method": "qr", "contact_info": ""}


@pytest.fixture
def integration(make_user, api):
    from accounts.services import api_key_create

    user = make_user(role=Role.SUPER_ADMIN)
    _, raw = api_key_create(user=user, name="press")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return api


@pytest.mark.parametrize(
    ("role", "method", "url", "allowed"),
    [
        (Role.READ_ONLY, "get", STATUS, True),
        (Role.SUPPORT_AGENT, "get", STATUS, False),
        (Role.CAMPAIGN_MANAGER, "get", STATUS, False),
        (None, "get", STATUS, False),
        (Role.READ_ONLY, "post", ACTIVATE, False),
        (Role.SUPPORT_AGENT, "post", ACTIVATE, False),
        (Role.SUPPORT_AGENT, "post", REPLENISH, False),
        (Role.READ_ONLY, "post", REPLENISH, False),
        (Role.READ_ONLY, "post", RESEND, False),
        (None, "post", RESEND, False),
    ],
)
def test_the_roles_table_decides_who_may_call_what(
    make_user, as_user, pool_config, role, method, url, allowed
):
    pool_config()
    client = as_user(make_user(role=role))
    response = getattr(client, method)(url, BODY, format="json")
    assert (response.status_code == 403) is not allowed


def test_anonymous_callers_are_refused(api):
    assert api.get(STATUS).status_code == 401


def test_activation_answers_the_account_and_a_qr_delivery(admin_api, pool_config, fill):
    pool_config(min_available=0)
    fill(1)

    response = admin_api.post(ACTIVATE, BODY, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body["account"]) == {
        "login",
        "server",
        "balance",
        "leverage",
        "currency",
        "expires_at",
    }
    assert body["account"]["balance"] == "50000.00" and body["account"]["leverage"] == 100
    assert body["delivery"]["method"] == "qr" and body["delivery"]["status"] == "sent"
    assert body["delivery"]["link"].startswith("https://desk.example/d/")
    assert body["delivery"]["qr_svg"].startswith("<svg")
    assert "password" not in str(body)
    again = admin_api.post(ACTIVATE, BODY, format="json")
    assert again.status_code == 409 and again.json()["code"] == "press_pass_active"


def test_an_integration_key_activates_and_an_empty_pool_answers_202(integration, pool_config):
    pool_config(min_available=0, target_buffer=0)

    response = integration.post(ACTIVATE, {**BODY, "delivery_method": "api"}, format="json")

    assert response.status_code == 202
    url = response.json()["status_url"]
    status = integration.get(url)
    assert status.status_code == 200 and status.json()["status"] == "queued"
    from demo_pool.services import pool_refill

    pool_config(target_buffer=1, min_available=1)
    pool_refill()
    done = integration.get(url).json()
    assert done["status"] == "assigned"
    assert done["account"]["login"] and done["delivery"]["link"]


def test_bad_input_is_a_400_with_field_errors(admin_api, pool_config):
    pool_config()
    response = admin_api.post(
        ACTIVATE, {**BODY, "delivery_method": "email", "contact_info": "nope"}, format="json"
    )
    assert response.status_code == 400
    response = admin_api.post(
        ACTIVATE, {**BODY, "delivery_method": "telegram", "contact_info": "no chat"}, format="json"
    )
    assert response.status_code == 400 and "contact_info" in response.json()
    response = admin_api.post(ACTIVATE, {**BODY, "delivery_method": "fax"}, format="json")
    assert response.status_code == 400 and "delivery_method" in response.json()


def test_an_unknown_request_id_is_404(admin_api):
    response = admin_api.get("/api/v1/demo/requests/6f1c1f5e-0000-4000-8000-000000000000/")
    assert response.status_code == 404 and response.json()["code"] == "request_not_found"


def test_pool_status_has_every_field_of_the_contract(make_user, as_user, pool_config, fill):
    pool_config(min_available=0)
    fill(2)
    body = as_user(make_user(role=Role.READ_ONLY)).get(STATUS).json()
    assert {
        "available", "assigned", "provisioning", "failed", "expired", "total", "min_available",
        "target_buffer", "max_pool_size", "availability_rate", "queue_depth",
        "provisioning_p50_ms", "provisioning_p95_ms", "delivery_success_rate",
    } <= set(body)  # fmt: skip
    assert body["available"] == 2 and body["total"] == 2
    assert body["provisioning_p50_ms"] is not None


def test_replenish_answers_202_with_how_many_were_queued(admin_api, pool_config):
    pool_config(max_pool_size=2)
    response = admin_api.post(REPLENISH)
    assert response.status_code == 202 and response.json() == {"queued": 2}
    assert DemoAccount.objects.filter(status="provisioning").count() == 2


def test_support_agents_resend_and_read_health(make_user, as_user, pool_config, fill, admin_api):
    pool_config(min_available=0)
    fill(1)
    admin_api.post(ACTIVATE, BODY, format="json")
    agent = as_user(make_user(role=Role.SUPPORT_AGENT))

    resent = agent.post(
        RESEND, {"user_id": "42", "delivery_method": "api", "contact_info": ""}, format="json"
    )
    health = agent.get("/api/v1/demo/accounts/42/health/")

    assert resent.status_code == 201 and resent.json()["link"]
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "assigned" and body["days_left"] == 7
    assert body["recent_checks"][0]["healthy"] is True
    assert agent.get("/api/v1/demo/accounts/nobody/health/").status_code == 404
    missing = agent.post(RESEND, {"user_id": "x", "delivery_method": "api"}, format="json")
    assert missing.status_code == 404


def test_health_during_a_demo_server_outage_shows_the_last_answer_not_a_disabled_account(
    make_user, as_user, pool_config, fill, admin_api
):
    """Found by a newcomer: with the demo server down the answer said enabled false, balance
    null, as if the account were broken; the outage says nothing about the account."""
    from tests.demo_pool.conftest import FaultyDemoGateway

    pool_config(min_available=0)
    fill(1)
    admin_api.post(ACTIVATE, BODY, format="json")
    agent = as_user(make_user(role=Role.SUPPORT_AGENT))
    before = agent.get("/api/v1/demo/accounts/42/health/").json()
    FaultyDemoGateway().fail_next("check_account")

    during = agent.get("/api/v1/demo/accounts/42/health/")

    assert during.status_code == 200
    body = during.json()
    assert body["live_check_error"].startswith("gateway: TransientGatewayError")
    assert body["enabled"] is True and body["balance"] == before["balance"]
    assert body["last_check_at"] == before["last_check_at"]
    assert body["recent_checks"][0]["healthy"] is False  # the failed check is logged
    assert before["live_check_error"] == ""
