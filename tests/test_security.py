"""The security pass: production settings pass the deploy check and send the hardening
headers; the admin's login is limited against guessing; CSRF guards the admin; the reveal page
allows no script; refresh tokens are not kept in clear.

Elsewhere: the API's login, refresh and sign-up throttle (tests/accounts/test_auth.py), the
reveal page's CSRF refusal (tests/delivery/test_web.py), a dump holding no payload
(tests/delivery/test_dump.py), and the soak's scan of a dump and the logs (docs/reliability.md).
"""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.roles import Role

ROOT = Path(__file__).resolve().parent.parent
# Made for these tests only: random bytes, never used anywhere else.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": base64.b64encode(os.urandom(40)).decode(),
    "ALLOWED_HOSTS": "backoffice.example.com",
    "ENCRYPTION_KEYS": "k9:" + base64.b64encode(os.urandom(32)).decode(),
    "LICENSE_KEY_PEPPER": base64.b64encode(os.urandom(32)).decode(),
    "LICENSE_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
    "EMAIL_HOST": "smtp.example.com",  # production sends through SMTP (tests/test_email_backend.py)
}
# What a production process answers on a probe over HTTPS, and the settings behind cookies.
PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
answer = Client().get("/healthz", secure=True, HTTP_HOST="backoffice.example.com")
plain = Client().get("/api/v1/auth/me/", HTTP_HOST="backoffice.example.com")
print(json.dumps({
    "headers": dict(answer.headers),
    "plain_http": [plain.status_code, plain.headers.get("Location")],
    "cookies_secure": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE],
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
}))
"""


def run(*args, **env):
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **PRODUCTION, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_with_no_warning():
    result = run("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_answers_carry_the_hardening_headers_and_cookies_are_secure():
    result = run("-c", PROBE)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    headers = seen["headers"]

    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert seen["plain_http"] == [301, "https://backoffice.example.com/api/v1/auth/me/"]
    assert seen["cookies_secure"] == [True, True]
    assert seen["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_without_a_tls_proxy_in_front_x_forwarded_proto_is_not_trusted():
    result = run("-c", PROBE, BEHIND_TLS_PROXY="false", SECURE_COOKIES="true")
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["proxy_header"] is None
    assert seen["cookies_secure"] == [True, True]


# --- The admin's login ----------------------------------------------------------------------


@pytest.fixture
def staff(make_user):
    return make_user(role=Role.SUPER_ADMIN, password="right-horse-battery-7")


def admin_login(client: Client, email: str, password: str, ip: str = "203.0.113.7"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": email, "password": password},
        REMOTE_ADDR=ip,
    )


def test_the_admin_login_refuses_an_address_after_too_many_failures(staff, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    settings.ADMIN_LOGIN_WINDOW_SECONDS = 600
    client = Client()

    failures = [admin_login(client, staff.email, f"guess-{n}").status_code for n in range(3)]
    refused = admin_login(client, staff.email, "right-horse-battery-7")

    assert failures == [200, 200, 200]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "600"
    assert "_auth_user_id" not in client.session  # even the right password is refused
    # Another address is not held back by this one's guesses.
    assert (
        admin_login(Client(), staff.email, "right-horse-battery-7", ip="198.51.100.2").status_code
        == 302
    )


def test_the_admin_login_counts_only_failures(staff, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    for _ in range(5):
        assert admin_login(Client(), staff.email, "right-horse-battery-7").status_code == 302


# --- CSRF -----------------------------------------------------------------------------------


def test_the_admin_login_refuses_a_post_without_the_csrf_token(staff):
    browser = Client(enforce_csrf_checks=True)
    answer = browser.post(
        "/admin/login/", {"username": staff.email, "password": "right-horse-battery-7"}
    )
    assert answer.status_code == 403
    assert "_auth_user_id" not in browser.session


def test_an_admin_action_without_the_csrf_token_is_refused(staff):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)

    answer = browser.post("/admin/logout/")

    assert answer.status_code == 403
    assert browser.get("/admin/").status_code == 200  # still logged in: nothing happened


# --- The reveal page ------------------------------------------------------------------------


def test_the_reveal_page_allows_no_script_and_no_framing(db, settings):
    from delivery.services import delivery_create

    settings.ENCRYPTION_KEYS = "k1:" + base64.b64encode(bytes(range(32))).decode()
    link = delivery_create(purpose="test:1", payload={"password": "x" * 12}, method="api").link
    page = Client().get("/d/" + link.rsplit("/", 1)[1])

    assert page.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in page["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert "script-src" not in policy  # falls back to default-src 'none'
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"


# --- Refresh tokens at rest -----------------------------------------------------------------


def test_refresh_tokens_are_stored_as_a_digest_and_still_rotate_and_revoke(api, staff):
    issued = api.post(
        "/api/v1/auth/token/", {"email": staff.email, "password": "right-horse-battery-7"}
    ).json()["refresh"]

    stored = list(OutstandingToken.objects.values_list("token", flat=True))
    assert stored and all(value.startswith("sha256:") for value in stored)
    assert issued not in stored
    assert str(RefreshToken(issued)) == issued

    rotated = api.post("/api/v1/auth/token/refresh/", {"refresh": issued})
    assert rotated.status_code == 200
    assert api.post("/api/v1/auth/token/refresh/", {"refresh": issued}).status_code == 401
    new = rotated.json()["refresh"]
    assert api.post("/api/v1/auth/logout/", {"refresh": new}).status_code == 205
    assert api.post("/api/v1/auth/token/refresh/", {"refresh": new}).status_code == 401
    assert not OutstandingToken.objects.filter(token__contains=new[-20:]).exists()
