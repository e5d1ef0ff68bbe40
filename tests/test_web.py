"""The web surface every deployment relies on: probes, metrics, schema, docs, errors."""

import pytest
from django.test import override_settings
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from core.errors import ConflictError
from gateways.errors import PermanentGatewayError, TransientGatewayError

pytestmark = pytest.mark.django_db


def test_healthz_says_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_broker_and_cache(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"database", "cache", "broker"}
    assert all(c["ok"] for c in checks.values())


def test_readyz_is_503_and_names_the_part_that_fails(client, monkeypatch):
    from accounts import health

    def broken():
        raise ConnectionError("cache down")

    monkeypatch.setitem(health.READINESS_CHECKS, "cache", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == {
        "ok": False,
        "detail": "ConnectionError: cache down",
        "ms": response.json()["checks"]["cache"]["ms"],
    }


def test_metrics_counts_requests_by_route_pattern(client):
    client.get("/healthz")
    text = client.get("/metrics").content.decode()
    assert "brokerdesk_http_requests_total{" in text
    assert 'route="healthz"' in text


def test_metrics_wants_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics"
    assert client.get("/metrics").status_code == 403
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics")
    assert ok.status_code == 200


def test_the_openapi_schema_and_offline_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/auth/token/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()  # the machine is offline: assets come from the sidecar


def test_the_admin_is_titled_brokerdesk(client):
    assert b"Brokerdesk" in client.get("/admin/login/").content


class Refuses(APIView):
    permission_classes = [AllowAny]
    error: Exception | None = None

    def get(self, request):
        raise self.error


urlpatterns = [
    path("conflict/", Refuses.as_view(error=ConflictError("busy", code="busy_now"))),
    path("down/", Refuses.as_view(error=TransientGatewayError("timeout", gateway="mt5"))),
    path("refused/", Refuses.as_view(error=PermanentGatewayError("bad", gateway="mt5"))),
]


@override_settings(ROOT_URLCONF=__name__)
def test_a_domain_error_becomes_its_status_with_a_code(client):
    response = client.get("/conflict/")
    assert response.status_code == 409
    assert response.json() == {"detail": "busy", "code": "busy_now"}


def test_an_unknown_object_is_404_with_the_not_found_code(make_user, as_user):
    from accounts.roles import Role

    api = as_user(make_user(role=Role.SUPER_ADMIN))
    response = api.get("/api/v1/campaigns/999999/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@override_settings(ROOT_URLCONF=__name__)
def test_an_outside_server_fault_is_never_a_500(client):
    down = client.get("/down/")
    assert down.status_code == 503
    assert down.json()["code"] == "gateway_unavailable"
    assert down["Retry-After"] == "5"
    refused = client.get("/refused/")
    assert refused.status_code == 502
    assert refused.json()["code"] == "gateway_error"
