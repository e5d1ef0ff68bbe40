"""One run through every answer that hands out a secret, for the no-store and log tests.

`secret_flow(make_user)` does what clients and staff do, over HTTP: a JWT login and refresh, a
sign-up, an API key used, a press pass activated with the `api` method (a one-time link), the
link opened with HEAD, OPTIONS and GET (link previews send HEAD), revealed, resent, a license
created and validated. It returns each answer by name and every secret it saw.

Its fixtures (fixed keys, the simulated demo server, a license signing key, the plans) come
from the demo pool and licensing tests: a module that calls it imports `FLOW_FIXTURES`' names.
"""

from dataclasses import dataclass, field

from django.test import Client
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_key_create
from tests.factories import PASSWORD

V1 = "/api/v1"
NEW_PASSWORD = "Sign-up-pass-with-4-words"


@dataclass
class Flow:
    answers: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)

    def saw(self, name: str, value: str) -> str:
        assert value, f"the flow expected a secret for {name}"
        self.secrets[name] = value
        return value


def _token(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


def secret_flow(make_user, *, pool_config, fill) -> Flow:
    flow = Flow()
    pool_config(min_available=0)
    fill(2)
    staff = make_user(role=Role.SUPER_ADMIN, is_staff=True)
    flow.saw("staff password", PASSWORD)
    api = APIClient()

    login = api.post(f"{V1}/auth/token/", {"email": staff.email, "password": PASSWORD})
    flow.answers["auth/token/"] = login
    assert login.status_code == 200, login.content
    access = flow.saw("access token", login.json()["access"])
    refresh = flow.saw("refresh token", login.json()["refresh"])

    refreshed = api.post(f"{V1}/auth/token/refresh/", {"refresh": refresh}, format="json")
    flow.answers["auth/token/refresh/"] = refreshed
    assert refreshed.status_code == 200, refreshed.content
    flow.saw("refreshed access token", refreshed.json()["access"])
    flow.saw("rotated refresh token", refreshed.json()["refresh"])

    flow.saw("sign-up password", NEW_PASSWORD)
    signup = api.post(
        f"{V1}/auth/register/",
        {"email": "new-client@example.com", "password": NEW_PASSWORD},
        format="json",
    )
    flow.answers["auth/register/"] = signup
    assert signup.status_code == 201, signup.content
    flow.saw("sign-up access token", signup.json()["access"])
    flow.saw("sign-up refresh token", signup.json()["refresh"])

    _, raw_key = api_key_create(user=staff, name="press desk")
    flow.saw("api key", raw_key)
    flow.saw("api key secret", raw_key.partition(".")[2])
    integration = APIClient()
    integration.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    status = integration.get(f"{V1}/demo/pool/status/")
    assert status.status_code == 200, status.content

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    activated = api.post(
        f"{V1}/demo/press-pass/activate/",
        {"user_id": "77", "real_name": "Jane Doe", "delivery_method": "api", "contact_info": ""},
        format="json",
    )
    flow.answers["demo/press-pass/activate/"] = activated
    assert activated.status_code == 201, activated.content
    link = flow.saw("one-time link", activated.json()["delivery"]["link"])
    token = flow.saw("one-time token", _token(link))

    browser = Client()
    path = f"/d/{token}"
    flow.answers["HEAD /d/"] = browser.head(path, HTTP_USER_AGENT="facebookexternalhit/1.1")
    flow.answers["OPTIONS /d/"] = browser.options(path)
    flow.answers["GET /d/"] = browser.get(path, HTTP_REFERER=f"https://mail.example/?next={link}")
    assert flow.answers["GET /d/"].status_code == 200

    revealed = api.post(f"{V1}/delivery/reveal/", {"token": token}, format="json")
    flow.answers["delivery/reveal/"] = revealed
    assert revealed.status_code == 200, revealed.content
    flow.saw("demo account password", revealed.json()["payload"]["password"])

    resent = api.post(
        f"{V1}/demo/accounts/resend-credentials/",
        {"user_id": "77", "delivery_method": "api", "contact_info": ""},
        format="json",
    )
    flow.answers["demo/accounts/resend-credentials/"] = resent
    assert resent.status_code == 201, resent.content
    new_link = flow.saw("resent one-time link", resent.json()["link"])
    flow.saw("resent one-time token", _token(new_link))
    gone = browser.post(path)  # the first link stopped working: 410, logged
    assert gone.status_code == 410

    created = api.post(
        f"{V1}/admin/users/",
        {"account_id": "FLOW001", "email": "trader@example.com", "license_type": "MONTHLY"},
        format="json",
    )
    flow.answers["admin/users/"] = created
    assert created.status_code == 201, created.content
    license_key = flow.saw("license key", created.json()["license_key"])
    flow.saw("license key without dashes", license_key.replace("-", ""))
    validated = APIClient().post(
        f"{V1}/licenses/validate/", {"license_key": license_key}, format="json"
    )
    flow.answers["licenses/validate/"] = validated
    assert validated.status_code == 200 and validated.json()["valid"], validated.content
    trades = APIClient().get(f"{V1}/licenses/trades/stats/", HTTP_X_LICENSE_KEY=license_key)
    assert trades.status_code == 200, trades.content
    return flow
