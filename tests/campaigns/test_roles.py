"""Who may call each campaign endpoint: the contract's role table, endpoint by endpoint."""

import pytest

from accounts.roles import Role

from .conftest import payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns/"
SA, CM, SUPPORT, READ_ONLY = (
    Role.SUPER_ADMIN,
    Role.CAMPAIGN_MANAGER,
    Role.SUPPORT_AGENT,
    Role.READ_ONLY,
)
CLIENT = "client"
ANONYMOUS = "anonymous"


def call(api, endpoint, campaign):
    one = f"{URL}{campaign.pk}/"
    return {
        "list": lambda: api.get(URL),
        "retrieve": lambda: api.get(one),
        "create": lambda: api.post(URL, payload(), format="json"),
        "put": lambda: api.put(one, payload(name="Put"), format="json"),
        "patch": lambda: api.patch(one, {"name": "Patched"}, format="json"),
        "status": lambda: api.patch(f"{one}status/", {"status": "active"}, format="json"),
        "duplicate": lambda: api.post(f"{one}duplicate/"),
        "scan": lambda: api.post(f"{URL}scan-mt5/"),
    }[endpoint]()


READS = {"list": 200, "retrieve": 200}
WRITES = {"create": 201, "put": 200, "patch": 200, "status": 200, "duplicate": 201, "scan": 200}
ENDPOINTS = {**READS, **WRITES}


def expected(who, endpoint):
    if who == ANONYMOUS:
        return 401
    if who == CLIENT:
        return 403
    if endpoint in READS or who in (SA, CM):
        return ENDPOINTS[endpoint]
    return 403


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("who", [SA, CM, SUPPORT, READ_ONLY, CLIENT, ANONYMOUS])
def test_each_role_gets_what_the_role_table_says(
    api, as_user, make_user, make_campaign, who, endpoint
):
    campaign = make_campaign()
    if who != ANONYMOUS:
        api = as_user(make_user(role=None if who == CLIENT else who))

    response = call(api, endpoint, campaign)

    assert response.status_code == expected(who, endpoint), response.content
    campaign.refresh_from_db()
    if expected(who, endpoint) >= 400:
        assert (campaign.name, campaign.status) != ("Patched", "active")
        assert campaign.status == "draft"


def test_an_integration_key_acts_with_its_users_roles(api, make_user, make_campaign):
    from accounts.services import api_key_create

    reader = make_user(role=READ_ONLY)
    _, raw = api_key_create(user=reader, name="reporting", created_by=reader)
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    make_campaign()

    assert api.get(URL).status_code == 200
    assert api.post(URL, payload(), format="json").status_code == 403
