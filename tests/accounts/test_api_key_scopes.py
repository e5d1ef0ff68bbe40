"""Issue 14: every API key got integration powers.

The attack: a key made for a plain client posted a deposit trigger with an invented deal
(1,000.00 of credit), re-issued another person's demo credentials to itself and fanned a
signal out to every session. A key now acts as its user, with that user's roles; integration
powers come only from a scope on the key, which only a Super Admin (or an operator at the
command line) grants.
"""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiKey, AuditEvent
from accounts.roles import Role
from accounts.services import api_key_create, api_key_set_scopes
from bonuses.models import Bonus
from core.errors import ApplicationError, ForbiddenError
from delivery.models import Delivery
from tests.demo_pool.conftest import _demo_settings, fill, pool_config  # noqa: F401

pytestmark = pytest.mark.django_db

DEPOSIT = "/api/v1/triggers/deposit/"
RESEND = "/api/v1/demo/accounts/resend-credentials/"
SIGNALS = "/api/v1/signals/"


def keyed(api, raw):
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return api


def opening_deal(login: int) -> int:
    from gateways.models import SimulatedMT5Deal

    deals = SimulatedMT5Deal.objects.filter(account_id=login, action="balance", profit__gt=0)
    return deals.latest("ticket").ticket


def test_a_clients_key_cannot_post_a_deposit_trigger_with_an_invented_deal(
    api, make_user, mt5, account, campaign_factory
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="100")
    _, raw = api_key_create(user=make_user(), name="my own key")

    response = keyed(api, raw).post(
        DEPOSIT, {"login": login, "amount": "1000.00", "deal_id": 424242}, format="json"
    )

    assert response.status_code == 403
    assert not Bonus.objects.exists()
    assert mt5.get_accounts([login])[login].credit == Decimal("0.00")


def test_a_key_with_the_triggers_scope_posts_a_deposit_trigger(
    api, make_user, mt5, account, campaign_factory
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="10")
    _, raw = api_key_create(user=make_user(), name="CRM", scopes=["triggers"])

    response = keyed(api, raw).post(
        DEPOSIT,
        {"login": login, "amount": "1000.00", "deal_id": opening_deal(login)},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert mt5.get_accounts([login])[login].credit == Decimal("100.00")


@pytest.fixture
def someones_press_pass(make_user, as_user, pool_config, fill):  # noqa: F811
    """A press pass of user "victim-1", delivered by API link."""
    pool_config(min_available=0)
    fill(1)
    admin = as_user(make_user(role=Role.SUPER_ADMIN))
    body = {"user_id": "victim-1", "real_name": "Vic Tim", "delivery_method": "api"}
    assert admin.post("/api/v1/demo/press-pass/activate/", body, format="json").status_code == 201
    admin.credentials()
    return "victim-1"


def test_a_clients_key_cannot_reissue_someones_demo_credentials(
    api, make_user, someones_press_pass
):
    deliveries = Delivery.objects.count()
    _, raw = api_key_create(user=make_user(), name="my own key")

    response = keyed(api, raw).post(
        RESEND, {"user_id": someones_press_pass, "delivery_method": "api"}, format="json"
    )

    assert response.status_code == 403
    assert Delivery.objects.count() == deliveries  # no new link, the old one still works


def test_a_key_with_the_demo_scope_resends(api, make_user, someones_press_pass):
    _, raw = api_key_create(user=make_user(), name="press desk", scopes=["demo"])
    response = keyed(api, raw).post(
        RESEND, {"user_id": someones_press_pass, "delivery_method": "api"}, format="json"
    )
    assert response.status_code == 201, response.content


def test_scopes_do_not_leak_into_each_other(api, make_user, mt5, account):
    _, raw = api_key_create(user=make_user(), name="signals only", scopes=["signals"])
    response = keyed(api, raw).post(
        DEPOSIT, {"login": account(), "amount": "10.00", "deal_id": 1}, format="json"
    )
    assert response.status_code == 403


def test_a_super_admins_key_keeps_its_powers_through_the_role_without_any_scope(
    api, make_user, mt5, account
):
    _, raw = api_key_create(user=make_user(role=Role.SUPER_ADMIN), name="ops")
    # Bad input on purpose: past the permission check, the 400 is the input's.
    response = keyed(api, raw).post(DEPOSIT, {"login": "x"}, format="json")
    assert response.status_code == 400


def test_only_a_super_admin_grants_scopes(make_user):
    agent = make_user(role=Role.SUPPORT_AGENT)
    with pytest.raises(ForbiddenError) as refused:
        api_key_create(user=agent, name="self-made", created_by=agent, scopes=["triggers"])
    assert refused.value.code == "scope_grant_forbidden"
    assert not ApiKey.objects.exists()

    admin = make_user(role=Role.SUPER_ADMIN)
    api_key, _ = api_key_create(user=agent, name="granted", created_by=admin, scopes=["demo"])
    assert api_key.scopes == ["demo"]
    with pytest.raises(ForbiddenError):
        api_key_set_scopes(api_key=api_key, scopes=["demo", "triggers"], actor=agent)
    assert ApiKey.objects.get(pk=api_key.pk).scopes == ["demo"]


def test_an_unknown_scope_is_refused(make_user):
    with pytest.raises(ApplicationError) as refused:
        api_key_create(user=make_user(), name="x", scopes=["everything"])
    assert refused.value.code == "invalid_scope"


def test_a_scope_grant_is_audited(make_user):
    admin = make_user(role=Role.SUPER_ADMIN)
    api_key, _ = api_key_create(user=make_user(), name="CRM", created_by=admin, scopes=["demo"])
    api_key_set_scopes(api_key=api_key, scopes=["triggers", "demo"], actor=admin)

    created = AuditEvent.objects.get(action="api_key.created", object_id=str(api_key.pk))
    changed = AuditEvent.objects.get(action="api_key.scopes_set", object_id=str(api_key.pk))
    assert created.after["scopes"] == ["demo"]
    assert (changed.before, changed.after) == (
        {"scopes": ["demo"]},
        {"scopes": ["triggers", "demo"]},
    )
    assert changed.actor == admin


def test_the_command_grants_scopes_and_says_so(api, make_user, capsys, mt5, account):
    user = make_user()
    call_command("create_api_key", user=user.email, name="CRM", scope=["triggers", "demo"])
    out = capsys.readouterr()
    raw = out.out.strip()
    assert "scopes: triggers, demo" in out.err
    assert ApiKey.objects.get(prefix=raw.split(".")[0]).scopes == ["triggers", "demo"]
    response = keyed(api, raw).post(DEPOSIT, {"login": "x"}, format="json")
    assert response.status_code == 400  # allowed past the permission: the 400 is the input's


def test_the_command_without_scope_makes_a_key_with_none(make_user, capsys):
    call_command("create_api_key", user=make_user().email, name="plain")
    assert "scopes: none" in capsys.readouterr().err
    assert ApiKey.objects.get().scopes == []


def test_the_command_refuses_an_unknown_scope(make_user):
    with pytest.raises(CommandError):
        call_command("create_api_key", "--scope", "all", user=make_user().email, name="x")


# --- the admin's API key screen -----------------------------------------------------------------


def test_a_super_admin_grants_scopes_in_the_admin_and_the_list_shows_them(client, make_user):
    admin = make_user(role=Role.SUPER_ADMIN)
    owner = make_user()
    client.force_login(admin)
    form = client.get("/admin/accounts/apikey/add/").content.decode()
    assert 'name="grant_scopes"' in form

    response = client.post(
        "/admin/accounts/apikey/add/",
        {"user": owner.pk, "name": "CRM hook", "grant_scopes": ["triggers", "signals"]},
    )

    assert response.status_code == 200
    api_key = ApiKey.objects.get(name="CRM hook")
    assert api_key.scopes == ["triggers", "signals"]
    assert "scopes: triggers, signals" in response.content.decode()
    listing = client.get("/admin/accounts/apikey/").content.decode()
    assert "triggers, signals" in listing

    client.post(f"/admin/accounts/apikey/{api_key.pk}/change/", {"grant_scopes": ["demo"]})
    assert ApiKey.objects.get(pk=api_key.pk).scopes == ["demo"]
    assert AuditEvent.objects.filter(action="api_key.scopes_set", actor=admin).exists()


def test_staff_who_may_add_keys_but_are_no_super_admin_cannot_grant_scopes(client, make_user):
    from django.contrib.auth.models import Permission

    manager = make_user(role=Role.CAMPAIGN_MANAGER)
    manager.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_apikey", "view_apikey", "view_user"])
    )
    owner = make_user()
    client.force_login(manager)
    assert 'name="grant_scopes"' not in client.get("/admin/accounts/apikey/add/").content.decode()

    response = client.post(
        "/admin/accounts/apikey/add/",
        {"user": owner.pk, "name": "sneaky", "grant_scopes": ["triggers"]},
    )

    assert response.status_code == 200
    assert ApiKey.objects.get(name="sneaky").scopes == []
