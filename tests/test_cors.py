"""CORS: a browser front end on an allowed origin (CORS_ALLOWED_ORIGINS, from the environment,
empty by default) may call /api/; every other origin, and every page outside /api/, gets no
CORS header, so the browser keeps the answer from the script."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"
TOKEN = "/api/v1/auth/token/"
WRONG_LOGIN = {"email": "x@example.com", "password": "wrong"}


def preflight(client, path, origin, headers="authorization, content-type, idempotency-key"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


@pytest.fixture
def app_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]


def test_by_default_no_origin_is_allowed(client):
    assert preflight(client, TOKEN, APP).get("Access-Control-Allow-Origin") is None
    answer = client.post(TOKEN, WRONG_LOGIN, HTTP_ORIGIN=APP, content_type="application/json")
    assert answer.status_code == 401
    assert answer.get("Access-Control-Allow-Origin") is None


def test_an_allowed_origin_passes_the_preflight_with_the_headers_the_api_reads(client, app_origin):
    answer = preflight(client, TOKEN, APP, headers="authorization, idempotency-key, x-license-key")

    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == APP
    allowed = {h.strip() for h in answer["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "x-license-key"} <= allowed
    assert "POST" in answer["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in answer  # tokens in headers, no cookies


def test_an_allowed_origin_reads_answers_and_refusals_with_their_codes(client, app_origin):
    refused = client.post(TOKEN, WRONG_LOGIN, HTTP_ORIGIN=APP, content_type="application/json")
    assert refused.status_code == 401
    assert refused["Access-Control-Allow-Origin"] == APP
    assert "origin" in refused["Vary"].lower()
    assert "retry-after" in refused["Access-Control-Expose-Headers"].lower()

    # Refused by the request guard, before any view: the browser still sees the 400 and code.
    guarded = client.get("/api/v1/campaigns/?search=%00", HTTP_ORIGIN=APP)
    assert guarded.status_code == 400 and guarded.json()["code"] == "bad_query"
    assert guarded["Access-Control-Allow-Origin"] == APP


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://app.example.com", "https://app.example.com.evil.example"],
)
def test_any_other_origin_is_not_echoed(client, app_origin, origin):
    assert preflight(client, TOKEN, origin).get("Access-Control-Allow-Origin") is None
    answer = client.post(TOKEN, WRONG_LOGIN, HTTP_ORIGIN=origin, content_type="application/json")
    assert answer.get("Access-Control-Allow-Origin") is None


def test_pages_outside_the_api_never_answer_cors(client, app_origin):
    for path in ("/admin/login/", "/d/not-a-token/", "/healthz"):
        assert client.get(path, HTTP_ORIGIN=APP).get("Access-Control-Allow-Origin") is None, path


def _settings_with(value: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CORS_ALLOWED_ORIGINS": value, "DJANGO_SETTINGS_MODULE": "config.settings"}
    code = "from django.conf import settings; print(settings.CORS_ALLOWED_ORIGINS)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_allow_list_comes_from_the_environment_and_refuses_what_is_not_an_origin():
    read = _settings_with("https://app.example.com,http://localhost:5173")
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "['https://app.example.com', 'http://localhost:5173']"
    for bad in ("*", "https://*.example.com", "app.example.com", "https://app.example.com/"):
        refused = _settings_with(bad)
        assert refused.returncode != 0 and "CORS_ALLOWED_ORIGINS" in refused.stderr, bad
