"""Integration API keys: shown once, stored as a hash, act as their user, revocable."""

import hashlib

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, AuditEvent
from accounts.permissions import area_permission
from accounts.roles import Role
from accounts.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


class TriggerProbe(APIView):
    permission_classes = [area_permission("triggers")]

    def post(self, request):
        return Response({"user": request.user.email})


urlpatterns = [path("probe/trigger/", TriggerProbe.as_view())]


def test_a_key_acts_as_its_user(api, make_user):
    user = make_user()
    _, raw = api_key_create(user=user, name="CRM")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 200
    assert response.json()["email"] == user.email


def test_only_a_hash_of_the_secret_is_stored(make_user):
    api_key, raw = api_key_create(user=make_user(), name="CRM")
    prefix, secret = raw.split(".")
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.prefix == prefix
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiKey.objects.filter(pk=api_key.pk).values().get())


def test_a_revoked_key_gets_401(api, make_user):
    api_key, raw = api_key_create(user=make_user(), name="CRM")
    api_key_revoke(api_key=api_key, reason="leaked")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"
    assert AuditEvent.objects.filter(action="api_key.revoked", reason="leaked").exists()


@pytest.mark.parametrize(
    "header", ["Api-Key", "Api-Key nodot", "Api-Key a.b c", "Api-Key abc.wrong"]
)
def test_a_malformed_or_wrong_key_gets_401(api, make_user, header):
    api_key_create(user=make_user(), name="CRM")
    api.credentials(HTTP_AUTHORIZATION=header)
    assert api.get("/api/v1/auth/me/").status_code == 401


def test_a_key_of_a_deactivated_user_gets_401(api, make_user):
    user = make_user()
    _, raw = api_key_create(user=user, name="CRM")
    user.is_active = False
    user.save(update_fields=["is_active"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.get("/api/v1/auth/me/").status_code == 401


def test_revoking_twice_is_a_conflict(make_user):
    from core.errors import ConflictError

    api_key, _ = api_key_create(user=make_user(), name="CRM")
    api_key_revoke(api_key=api_key)
    with pytest.raises(ConflictError):
        api_key_revoke(api_key=api_key)


@override_settings(ROOT_URLCONF=__name__)
def test_a_clients_key_has_no_more_power_than_the_client(api, make_user, as_user):
    user = make_user()
    assert as_user(user).post("/probe/trigger/").status_code == 403
    _, raw = api_key_create(user=user, name="deposit hook")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.post("/probe/trigger/").status_code == 403


@override_settings(ROOT_URLCONF=__name__)
def test_only_a_key_with_the_triggers_scope_is_a_trigger_integration(api, make_user, as_user):
    user = make_user()
    _, raw = api_key_create(user=user, name="deposit hook", scopes=["triggers"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.post("/probe/trigger/").status_code == 200
    # The same user with a JWT holds no scope: the power is the key's, not the user's.
    assert as_user(user).post("/probe/trigger/").status_code == 403


def test_the_command_prints_the_key_once_and_it_works(api, make_user, capsys):
    user = make_user(role=Role.SUPER_ADMIN)
    call_command("create_api_key", user=user.email, name="ops")
    raw = capsys.readouterr().out.strip()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.get("/api/v1/auth/me/").json()["roles"] == ["Super Admin"]
    call_command("revoke_api_key", raw.split(".")[0])
    assert api.get("/api/v1/auth/me/").status_code == 401


def test_staff_create_a_key_in_the_admin_and_see_it_once(client, make_user):
    admin_user = make_user(role=Role.SUPER_ADMIN, is_superuser=True)
    owner = make_user()
    client.force_login(admin_user)
    response = client.post("/admin/accounts/apikey/add/", {"user": owner.pk, "name": "CRM hook"})
    assert response.status_code == 200
    api_key = ApiKey.objects.get(name="CRM hook")
    page = response.content.decode()
    assert "shown this once" in page
    raw = page.split('id="api-key" value="')[1].split('"')[0]
    assert raw.startswith(api_key.prefix + ".")
    assert api_key.user == owner
    listing = client.get(f"/admin/accounts/apikey/{api_key.pk}/change/").content.decode()
    assert raw.split(".")[1] not in listing
