"""The role table: groups and their permissions, the API areas, and the admin per role."""

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import area_permission
from accounts.roles import API_AREAS, SCOPE_ROLES, STAFF_ROLES, Role
from accounts.services import roles_sync

pytestmark = pytest.mark.django_db


class CampaignsProbe(APIView):
    permission_classes = [area_permission("campaigns.read", "campaigns.write")]

    def get(self, request):
        return Response({})

    def post(self, request):
        return Response({})


urlpatterns = [path("probe/campaigns/", CampaignsProbe.as_view())]


def test_roles_sync_is_idempotent_and_creates_the_four_groups():
    first = roles_sync()
    second = roles_sync()
    assert first == second
    assert set(Group.objects.values_list("name", flat=True)) >= {r.value for r in STAFF_ROLES}
    super_admin = Group.objects.get(name=Role.SUPER_ADMIN)
    assert super_admin.permissions.count() == first[Role.SUPER_ADMIN]
    assert super_admin.permissions.filter(codename="view_auditevent").exists()


def test_roles_sync_removes_a_permission_granted_by_hand():
    from django.contrib.auth.models import Permission

    roles_sync()
    group = Group.objects.get(name=Role.READ_ONLY)
    extra = Permission.objects.get(codename="delete_user")
    group.permissions.add(extra)
    roles_sync()
    assert not group.permissions.filter(pk=extra.pk).exists()


def test_every_area_names_only_known_roles():
    known = {r.value for r in STAFF_ROLES} | SCOPE_ROLES
    for area, roles in API_AREAS.items():
        assert roles <= known, area


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.SUPER_ADMIN, 200, 200),
        (Role.CAMPAIGN_MANAGER, 200, 200),
        (Role.SUPPORT_AGENT, 200, 403),
        (Role.READ_ONLY, 200, 403),
        (None, 403, 403),
    ],
)
def test_campaign_areas_follow_the_contracts_role_table(make_user, as_user, role, read, write):
    api = as_user(make_user(role=role))
    assert api.get("/probe/campaigns/").status_code == read
    assert api.post("/probe/campaigns/").status_code == write


@override_settings(ROOT_URLCONF=__name__)
def test_anonymous_callers_get_401_from_an_area(api):
    assert api.get("/probe/campaigns/").status_code == 401


@pytest.mark.parametrize(
    ("role", "sees", "hidden"),
    [
        (Role.SUPER_ADMIN, ["/admin/accounts/user/", "/admin/accounts/auditevent/"], []),
        (Role.READ_ONLY, ["/admin/accounts/auditevent/"], ["/admin/accounts/user/"]),
        (Role.CAMPAIGN_MANAGER, [], ["/admin/accounts/user/", "/admin/accounts/auditevent/"]),
        (Role.SUPPORT_AGENT, [], ["/admin/accounts/user/", "/admin/accounts/auditevent/"]),
    ],
)
def test_each_staff_role_sees_only_its_admin_sections(client, make_user, role, sees, hidden):
    user = make_user(role=role, is_superuser=role is Role.SUPER_ADMIN)
    client.force_login(user)
    index = client.get("/admin/")
    assert index.status_code == 200
    page = index.content.decode()
    for url in sees:
        assert url in page
        assert client.get(url).status_code == 200
    for url in hidden:
        assert url not in page
        assert client.get(url).status_code == 403


def test_the_audit_trail_is_read_only_in_the_admin_even_for_a_super_admin(client, make_user):
    from accounts.services import audit_record

    user = make_user(role=Role.SUPER_ADMIN, is_superuser=True)
    event = audit_record(action="probe", object_type="test", object_id="1", actor=user)
    client.force_login(user)
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert client.get(f"/admin/accounts/auditevent/{event.pk}/delete/").status_code == 403
    detail = client.get(f"/admin/accounts/auditevent/{event.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content


def test_a_client_cannot_enter_the_admin(client, make_user):
    client.force_login(make_user())
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_unticking_active_in_the_admin_deactivates_as_the_api_does(client, api, make_user):
    """Found in review: the admin's "active" box flipped the flag and nothing else, so the
    user's API keys kept working and no audit event said who did it."""
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import AuditEvent
    from accounts.services import api_key_create

    boss = make_user(role=Role.SUPER_ADMIN, is_superuser=True)
    agent = make_user(role=Role.SUPPORT_AGENT)
    refresh = RefreshToken.for_user(agent)
    key, secret = api_key_create(user=agent, name="helpdesk script", created_by=boss)
    assert api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Api-Key {secret}").status_code == 200
    client.force_login(boss)

    answer = client.post(
        f"/admin/accounts/user/{agent.pk}/change/",
        {
            "email": agent.email,
            "username": agent.username or "",
            "is_staff": "on",
            "groups": list(agent.groups.values_list("pk", flat=True)),
        },  # "is_active" unticked
    )

    assert answer.status_code == 302, answer.content.decode()[:2000]
    agent.refresh_from_db()
    assert not agent.is_active
    assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).exists()
    assert api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Api-Key {secret}").status_code == 401
    key.refresh_from_db()
    assert key.revoked_at is not None  # dead even if the user is made active again
    event = AuditEvent.objects.get(action="user.deactivated", object_id=str(agent.pk))
    assert event.actor_id == boss.pk
