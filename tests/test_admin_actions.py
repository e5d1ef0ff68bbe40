"""Issue 14: every admin action and every custom admin page checks its permission.

The attack: Read-Only and Support Agent retired demo accounts, Read-Only resent credentials
(rotating the password and killing the user's link), and the Campaign Manager and Support
Agent opened the demo-pool dashboard (the pool status). The tables below are the role table
of API.md as the admin applies it; an action or a page added without a row fails the walk.
"""

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client, RequestFactory
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.models import AuditEvent
from accounts.roles import Role
from accounts.services import api_key_create
from campaigns.services import campaign_create
from delivery.models import Delivery
from delivery.services import delivery_reveal
from demo_pool.models import DemoAccount, PressPass
from demo_pool.services import press_pass_activate
from licensing.services import license_create
from tests.campaigns.conftest import valid_fields
from tests.demo_pool.conftest import _demo_settings, fill, pool_config  # noqa: F401

pytestmark = pytest.mark.django_db

SA, CM, SUP, RO = (
    Role.SUPER_ADMIN,
    Role.CAMPAIGN_MANAGER,
    Role.SUPPORT_AGENT,
    Role.READ_ONLY,
)
ALL = frozenset(Role)
ONLY_SA = frozenset({SA})
NOBODY = frozenset()

# (model label, action) -> the roles that get the action. `delete_selected` is Django's; it
# follows each model's delete permission, which nearly every screen here switches off.
ACTIONS: dict[tuple[str, str], frozenset] = {
    ("accounts.accountevent", "delete_selected"): NOBODY,
    ("accounts.accountevent", "retry_now_selected"): ONLY_SA,
    ("accounts.apikey", "delete_selected"): ONLY_SA,
    ("accounts.apikey", "revoke"): ONLY_SA,
    ("accounts.auditevent", "delete_selected"): NOBODY,
    ("accounts.loginlockout", "delete_selected"): NOBODY,
    ("accounts.loginlockout", "unlock_selected"): ONLY_SA,
    ("accounts.monitoredaccount", "delete_selected"): NOBODY,
    ("accounts.monitoredaccount", "reset_errors_selected"): ONLY_SA,
    ("accounts.user", "delete_selected"): NOBODY,
    ("accounts.user", "unlock_login"): ONLY_SA,
    ("auth.group", "delete_selected"): ONLY_SA,
    ("bonuses.bonus", "cancel_selected"): ONLY_SA,
    ("bonuses.bonus", "delete_selected"): NOBODY,
    ("bonuses.bonus", "force_convert_selected"): ONLY_SA,
    # API.md: credit above a role's limit waits for a (different) Super Admin's approval.
    ("bonuses.bonusapproval", "approve_selected"): ONLY_SA,
    ("bonuses.bonusapproval", "delete_selected"): NOBODY,
    ("bonuses.bonusapproval", "reject_selected"): ONLY_SA,
    ("bonuses.creditintent", "delete_selected"): NOBODY,
    ("campaigns.campaign", "activate"): frozenset({SA, CM}),
    ("campaigns.campaign", "archive"): frozenset({SA, CM}),
    ("campaigns.campaign", "delete_selected"): NOBODY,
    ("campaigns.campaign", "duplicate"): frozenset({SA, CM}),
    ("campaigns.campaign", "end"): frozenset({SA, CM}),
    ("campaigns.campaign", "pause"): frozenset({SA, CM}),
    ("delivery.delivery", "delete_selected"): NOBODY,
    ("delivery.deliveryattempt", "delete_selected"): NOBODY,
    ("demo_pool.activationrequest", "delete_selected"): NOBODY,
    ("demo_pool.demoaccount", "delete_selected"): NOBODY,
    ("demo_pool.demoaccount", "retire_accounts"): ONLY_SA,
    ("demo_pool.healthlog", "delete_selected"): NOBODY,
    ("demo_pool.poolconfig", "delete_selected"): NOBODY,
    ("demo_pool.presspass", "delete_selected"): NOBODY,
    ("demo_pool.presspass", "resend_credentials"): frozenset({SA, SUP}),
    ("demo_pool.provisioningrequest", "delete_selected"): NOBODY,
    ("django_celery_beat.clockedschedule", "delete_selected"): ONLY_SA,
    ("django_celery_beat.crontabschedule", "delete_selected"): ONLY_SA,
    ("django_celery_beat.intervalschedule", "delete_selected"): ONLY_SA,
    ("django_celery_beat.periodictask", "delete_selected"): ONLY_SA,
    ("django_celery_beat.periodictask", "disable_tasks"): ONLY_SA,
    ("django_celery_beat.periodictask", "enable_tasks"): ONLY_SA,
    ("django_celery_beat.periodictask", "run_tasks"): ONLY_SA,
    ("django_celery_beat.periodictask", "toggle_tasks"): ONLY_SA,
    ("django_celery_beat.solarschedule", "delete_selected"): ONLY_SA,
    ("gateways.simulatedbrokeraccount", "delete_selected"): ONLY_SA,
    ("gateways.simulatedbrokertrade", "delete_selected"): ONLY_SA,
    ("gateways.simulateddemoaccount", "delete_selected"): ONLY_SA,
    ("gateways.simulatedmt5account", "delete_selected"): NOBODY,
    ("gateways.simulatedmt5deal", "delete_selected"): NOBODY,
    ("gateways.simulatedmt5position", "delete_selected"): NOBODY,
    ("gateways.simulatedtelegrammessage", "delete_selected"): ONLY_SA,
    ("gateways.simulatedtelegramupdate", "delete_selected"): ONLY_SA,
    ("gateways.simulatorknobs", "delete_selected"): ONLY_SA,
    ("licensing.apiusagelog", "delete_selected"): ONLY_SA,
    ("licensing.license", "activate"): ONLY_SA,
    ("licensing.license", "delete_selected"): NOBODY,
    ("licensing.license", "extend_30_days"): ONLY_SA,
    ("licensing.license", "suspend"): ONLY_SA,
    ("licensing.plan", "delete_selected"): ONLY_SA,
    ("licensing.quotahold", "delete_selected"): ONLY_SA,
    ("licensing.reportedtrade", "delete_selected"): ONLY_SA,
    ("licensing.subscription", "delete_selected"): ONLY_SA,
    ("token_blacklist.blacklistedtoken", "delete_selected"): ONLY_SA,
    ("token_blacklist.outstandingtoken", "delete_selected"): NOBODY,
    ("trading_sessions.brokeraccount", "delete_selected"): NOBODY,
    ("trading_sessions.brokeraccount", "test_connection"): ONLY_SA,
    ("trading_sessions.channelsubscription", "delete_selected"): NOBODY,
    ("trading_sessions.signal", "delete_selected"): NOBODY,
    ("trading_sessions.signalchannel", "delete_selected"): ONLY_SA,
    ("trading_sessions.telegramcursor", "delete_selected"): NOBODY,
    ("trading_sessions.trade", "delete_selected"): NOBODY,
    ("trading_sessions.tradingsession", "delete_selected"): NOBODY,
    ("trading_sessions.tradingsession", "stop_selected"): ONLY_SA,
}

# Custom admin pages (`get_urls`), by URL name -> (method, query, the roles allowed).
PAGES: dict[str, tuple[str, str, frozenset]] = {
    "demo_pool_dashboard": ("get", "", frozenset({SA, RO})),  # API.md: pool status
    "bonuses_bonus_assign": ("get", "", frozenset({SA, SUP})),
    "bonuses_bonus_account_lookup": ("get", "", ALL),
    "bonuses_bonus_reports": ("get", "", frozenset({SA, RO})),
    "bonuses_bonus_report_export": ("get", "?report=summary&format=csv", frozenset({SA, RO})),
    "campaigns_campaign_scan_mt5": ("post", "", frozenset({SA, CM})),
    "auth_user_password_change": ("get", "", ONLY_SA),
}


@pytest.fixture
def staff(make_user):
    return {role: make_user(role=role, is_staff=True) for role in Role}


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _label(model) -> str:
    return model._meta.label_lower


def test_every_action_of_every_model_admin_declares_a_permission():
    undeclared = [
        (_label(model), name)
        for model, model_admin in admin.site._registry.items()
        for func, name, _ in model_admin._get_base_actions()
        if not getattr(func, "allowed_permissions", None)
    ]
    assert undeclared == []


def test_each_role_gets_exactly_the_actions_of_the_table(staff):
    seen, wrong = set(), []
    for model, model_admin in admin.site._registry.items():
        for _, name, _ in model_admin._get_base_actions():
            key = (_label(model), name)
            seen.add(key)
            if key not in ACTIONS:
                continue  # reported below, all at once
            granted = {
                role
                for role, user in staff.items()
                if name in model_admin.get_actions(_request(user))
            }
            if granted != ACTIONS[key]:
                wrong.append((key, sorted(granted), sorted(ACTIONS[key])))
    assert sorted(seen - set(ACTIONS)) == [], "new admin actions: add them to ACTIONS"
    assert sorted(set(ACTIONS) - seen) == [], "ACTIONS names actions that no longer exist"
    assert wrong == []


@pytest.fixture
def world(pool_config, fill, make_user):  # noqa: F811
    """Rows for the actions that change something: pool accounts, an active press pass with
    a live link, a draft campaign, a license, an API key, a beat entry."""
    pool_config(min_available=0)
    fill(3)
    activated = press_pass_activate(user_id="u1", real_name="U One", delivery_method="api")
    campaign_create(actor=None, **valid_fields())
    license_create(account_id="ACC0001", license_type="MONTHLY")
    api_key_create(user=make_user(), name="integration")
    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="tick", task="accounts.heartbeat", interval=every)
    return activated


def _fingerprint(model) -> tuple:
    rows = tuple(model._default_manager.order_by("pk").values_list())
    return rows, AuditEvent.objects.count(), Delivery.objects.count()


def test_a_forbidden_role_posting_any_action_changes_nothing(staff, world, monkeypatch):
    """Every action, POSTed through its changelist by every role the table refuses: the
    action never runs and its model, the audit trail and the deliveries stay as they were.
    The Super Admin's POST of the same form reaches the action (the form is right)."""
    calls = []

    def spy(func, name):
        def recorded(model_admin, request, queryset):
            calls.append(((_label(model_admin.model), name), request.user.pk))
            if request.user.pk == staff[SA].pk:
                return None  # the control: reached; the real thing need not run
            return func(model_admin, request, queryset)

        recorded.__dict__.update(func.__dict__)
        return recorded

    for name, func in list(admin.site.actions):
        monkeypatch.setitem(admin.site._actions, name, spy(func, name))
    for model_admin in admin.site._registry.values():
        for func, name, _ in model_admin._get_base_actions():
            if name not in admin.site._actions:
                monkeypatch.setattr(type(model_admin), name, spy(func, name))

    checked = 0
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        pks = [str(pk) for pk in model._default_manager.values_list("pk", flat=True)[:5]]
        for _, name, _ in model_admin._get_base_actions():
            key = (_label(model), name)
            for role, user in staff.items():
                if role in ACTIONS[key] and role != SA:
                    continue  # allowed roles run for real in the feature tests
                client = Client()
                client.force_login(user)
                before = _fingerprint(model)
                client.post(
                    url, {"action": name, ACTION_CHECKBOX_NAME: pks or ["1"], "select_across": "1"}
                )
                reached = (key, user.pk) in calls
                if role == SA:
                    assert reached is (SA in ACTIONS[key]), key
                    continue
                assert not reached, (key, role)
                assert _fingerprint(model) == before, (key, role)
                checked += 1
    assert checked > 150


def test_read_only_and_support_cannot_retire_a_demo_account(staff, world):
    spare = DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE).first()
    for role in (RO, SUP, CM):
        client = Client()
        client.force_login(staff[role])
        client.post(
            "/admin/demo_pool/demoaccount/",
            {"action": "retire_accounts", ACTION_CHECKBOX_NAME: [spare.pk]},
        )
        spare.refresh_from_db()
        assert spare.status == DemoAccount.Status.AVAILABLE, role
    assert not AuditEvent.objects.filter(action__contains="retire").exists()


def test_read_only_cannot_resend_credentials_and_the_users_link_keeps_working(staff, world):
    press_pass = PressPass.objects.get()
    client = Client()
    client.force_login(staff[RO])

    client.post(
        "/admin/demo_pool/presspass/",
        {"action": "resend_credentials", ACTION_CHECKBOX_NAME: [press_pass.pk]},
    )

    press_pass.refresh_from_db()
    assert press_pass.delivery_id == world.press_pass.delivery_id
    token = world.delivery.link.rstrip("/").rsplit("/", 1)[1]
    payload = delivery_reveal(token=token, ip="127.0.0.1").payload
    assert payload["login"] == press_pass.account.login


def test_a_support_agent_may_resend_credentials(staff, world):
    press_pass = PressPass.objects.get()
    client = Client()
    client.force_login(staff[SUP])

    client.post(
        "/admin/demo_pool/presspass/",
        {"action": "resend_credentials", ACTION_CHECKBOX_NAME: [press_pass.pk]},
    )

    press_pass.refresh_from_db()
    assert press_pass.delivery_id != world.press_pass.delivery_id


def test_a_super_admin_may_retire_an_available_account(staff, world):
    spare = DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE).first()
    client = Client()
    client.force_login(staff[SA])
    client.post(
        "/admin/demo_pool/demoaccount/",
        {"action": "retire_accounts", ACTION_CHECKBOX_NAME: [spare.pk]},
    )
    spare.refresh_from_db()
    assert spare.status == DemoAccount.Status.RETIRED


def _custom_pages():
    """Every URL a ModelAdmin adds to Django's own (changelist, add, change, ...)."""
    pages = {}
    for model, model_admin in admin.site._registry.items():
        own = {pattern.name for pattern in admin.ModelAdmin.get_urls(model_admin)}
        for pattern in model_admin.get_urls():
            if pattern.name not in own:
                pages[pattern.name] = (model, pattern)
    return pages


def test_each_custom_admin_page_answers_each_role_by_the_table(staff, world, make_user):
    pages = _custom_pages()
    assert set(pages) == set(PAGES), "a custom admin page without a row in PAGES"
    someone = make_user()
    for name, (method, query, allowed) in PAGES.items():
        args = [someone.pk] if name == "auth_user_password_change" else []
        url = reverse(f"admin:{name}", args=args) + query
        for role, user in staff.items():
            client = Client()
            client.force_login(user)
            status = getattr(client, method)(url).status_code
            if role in allowed:
                assert status in (200, 302), (name, role, status)
            else:
                assert status == 403, (name, role, status)


def test_the_pool_dashboard_is_the_pool_status_and_its_replenish_is_the_super_admins(
    staff,
    world,
):
    dashboard = "/admin/demo_pool/demoaccount/dashboard/"
    provisioning = DemoAccount.objects.filter(status=DemoAccount.Status.PROVISIONING)
    for role, expected in ((CM, 403), (SUP, 403), (RO, 200), (SA, 200)):
        client = Client()
        client.force_login(staff[role])
        assert client.get(dashboard).status_code == expected, role
        changelist = client.get("/admin/demo_pool/demoaccount/")
        assert (dashboard.encode() in changelist.content) is (expected == 200), role

    for role in (CM, SUP, RO):
        client = Client()
        client.force_login(staff[role])
        client.post(dashboard, {"count": "2"})
    assert not provisioning.exists()

    client = Client()
    client.force_login(staff[SA])
    client.post(dashboard, {"count": "2"})
    assert provisioning.count() == 2
