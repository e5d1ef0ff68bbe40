"""Issue 14: answers that carry a secret (a license key on create, a one-time link on activate
and resend, JWTs, a revealed payload, the link's page) must not be kept by a browser, a proxy
or a CDN: `Cache-Control: no-store` on each."""

import pytest

from tests.demo_pool.conftest import _demo_settings, fill, pool_config  # noqa: F401
from tests.licensing.conftest import _licensing_settings, _plans  # noqa: F401
from tests.secret_flow import secret_flow

pytestmark = pytest.mark.django_db

SECRET_ANSWERS = [
    "admin/users/",
    "demo/press-pass/activate/",
    "demo/accounts/resend-credentials/",
    "auth/token/",
    "auth/token/refresh/",
    "auth/register/",
    "delivery/reveal/",
    "GET /d/",
]


@pytest.fixture
def flow(make_user, pool_config, fill):  # noqa: F811
    return secret_flow(make_user, pool_config=pool_config, fill=fill)


def test_every_answer_that_carries_a_secret_says_no_store(flow):
    for name in SECRET_ANSWERS:
        answer = flow.answers[name]
        assert "no-store" in answer.get("Cache-Control", ""), name


def test_api_errors_are_not_stored_either(api):
    refused = api.post("/api/v1/auth/token/", {"email": "x@example.com", "password": "wrong"})
    assert refused.status_code == 401
    assert refused["Cache-Control"] == "no-store" and refused["Pragma"] == "no-cache"


def test_the_link_page_keeps_its_own_stricter_cache_control(flow):
    page = flow.answers["GET /d/"]
    assert page["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"


def test_the_static_api_schema_may_still_be_cached(client, db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert "no-store" not in schema.get("Cache-Control", "")
