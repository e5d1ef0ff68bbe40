"""The installation the whole-API tests (fuzzing, the role matrix) call into.

`world`: one small installation per test module, built once inside a transaction that the
module rolls back at its end; each test runs in its own savepoint inside it (pytest-django's
`db`), so what one call changes never reaches the next test or another module. It holds:

- a user per identity (`IDENTITIES`): the four staff roles, a client, another client, and four
  API keys, each of its own client user (no staff role): one with no scope (`key`: it may do
  what a client may, nothing more), and one per scope (`key_triggers`, `key_demo`,
  `key_signals`: what the key adds is its scope); `headers[identity]`, the credentials each
  sends (anonymous: none);
- on the simulated MT5 server: monitored accounts, an active Type A campaign with a bonus on one
  login, a Type C campaign with a bonus on another, a promo-code campaign;
- a license (and its key), a suspended license, the client's subscription;
- the client's broker account with a running session and a settled trade, a spare broker
  account and a stopped session (both free to delete), the client subscribed to a signal
  channel; the other client's own account;
- a delivery (and its token), the demo pool with one account left, a press pass and a queued
  activation request.

`path_values(world)` and `body_values(world)` say which real object each path parameter and
body field can name, for fuzzing.
"""

import base64
import importlib
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from tests.factories import PASSWORD

KEY = "k1:" + base64.b64encode(bytes(range(32))).decode()

STAFF = ("super_admin", "campaign_manager", "support_agent", "read_only")
# Each key identity is an API key of its own client user, with these scopes.
KEY_SCOPES = {
    "key": [],
    "key_triggers": ["triggers"],
    "key_demo": ["demo"],
    "key_signals": ["signals"],
}
IDENTITIES = (*STAFF, "client", "other_client", *KEY_SCOPES, "anonymous")


@dataclass
class World:
    users: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    refresh: str = ""  # a refresh token of the client
    login: int = 0  # a monitored MT5 login
    login_a: int = 0  # holds `bonus_a`
    login_c: int = 0  # holds `bonus_c`
    login_free: int = 0  # an MT5 login with no bonus, for grants
    deposit_free: int = 0  # login_free's deposit deal (1,000.00), for grants
    campaign: int = 0  # active, Type A, auto_deposit
    campaign_c: int = 0
    promo_code: str = ""
    bonus_a: int = 0
    bonus_c: int = 0
    approval: int = 0  # a Support Agent's assign above its limit, pending
    license_account: str = ""
    license_key: str = ""
    suspended_account: str = ""  # its license is suspended
    subscription: int = 0
    broker_account: int = 0  # the client's, with a running session and a trade
    spare_account: int = 0  # the client's, unused
    session: int = 0  # the client's, running
    stopped_session: int = 0  # the client's, stopped
    trade: int = 0
    channel: str = ""
    delivery: int = 0
    delivery_token: str = ""
    press_user: str = ""  # has an active press pass
    request: str = ""  # a queued activation request (uuid)

    def __getitem__(self, name):
        return getattr(self, name)


def _settings_of_the_world(tmp_dir) -> dict:
    from licensing.signing import new_private_key_b64

    return {
        "MT5_GATEWAY": "gateways.mt5.simulated.SimulatedMT5Gateway",
        "DEMO_GATEWAY": "gateways.demo.simulated.SimulatedDemoGateway",
        "BROKER_GATEWAY": "gateways.broker.simulated.SimulatedBrokerGateway",
        "TELEGRAM_GATEWAY": "gateways.telegram.simulated.SimulatedTelegramGateway",
        "ENCRYPTION_KEYS": KEY,
        "PUBLIC_BASE_URL": "https://desk.example",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LICENSE_SIGNING_KEY": new_private_key_b64(),
        "LICENSE_USAGE_SPOOL_DIR": str(tmp_dir / "spool"),
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
    }


def _build() -> World:
    from django.apps import apps
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.roles import Role
    from accounts.services import api_key_create, monitor_register, roles_sync, user_set_roles
    from bonuses.services import bonus_assign
    from campaigns.models import Campaign
    from delivery.services import delivery_create
    from demo_pool.models import ActivationRequest, DemoAccount
    from demo_pool.services import press_pass_activate
    from gateways.demo.simulated import SimulatedDemoGateway
    from gateways.mt5.simulated import SimulatedMT5Gateway
    from licensing.models import License
    from licensing.services import license_create, license_suspend, subscription_create
    from tests.factories import UserFactory
    from trading_sessions.models import SignalChannel, Trade
    from trading_sessions.services import (
        broker_account_create,
        channel_subscribe,
        session_create,
        session_start,
    )

    importlib.import_module("licensing.migrations.0002_seed_plans").seed(apps, None)
    roles_sync()
    world = World()
    roles = {
        "super_admin": Role.SUPER_ADMIN,
        "campaign_manager": Role.CAMPAIGN_MANAGER,
        "support_agent": Role.SUPPORT_AGENT,
        "read_only": Role.READ_ONLY,
    }
    for identity in IDENTITIES[:-1]:
        user = UserFactory(email=f"{identity.replace('_', '-')}@world.example")
        if identity in roles:
            user_set_roles(user=user, roles=[roles[identity]])
        world.users[identity] = user
        token = RefreshToken.for_user(user).access_token
        world.headers[identity] = {"Authorization": f"Bearer {token}"}
    for identity, scopes in KEY_SCOPES.items():
        _, raw_key = api_key_create(user=world.users[identity], name=identity, scopes=scopes)
        world.headers[identity] = {"Authorization": f"Api-Key {raw_key}"}
    world.headers["anonymous"] = {}
    world.refresh = str(RefreshToken.for_user(world.users["client"]))
    admin = world.users["super_admin"]
    client = world.users["client"]

    # MT5: three monitored accounts and a free one; a bonus of each kind.
    mt5 = SimulatedMT5Gateway()
    logins = [
        mt5.add_account(balance=Decimal("1000.00"), leverage=500, group="real\\standard")
        for _ in range(4)
    ]
    world.login, world.login_a, world.login_c, world.login_free = logins

    def deposit_deal(login):  # an account's opening deposit: what a manual grant stands on
        return next(d.ticket for d in mt5.get_deals(cursors={login: 0}) if d.action == "balance")

    world.deposit_free = deposit_deal(world.login_free)
    for login in logins[:3]:
        monitor_register(login=login, actor=admin)
    common = {"percentage": Decimal("50"), "status": Campaign.Status.ACTIVE}
    type_a = Campaign.objects.create(name="World Type A", bonus_type="A", **common)
    type_c = Campaign.objects.create(
        name="World Type C", bonus_type="C", convert_per_lot=Decimal("10.00"), **common
    )
    world.promo_code = "WORLD50"
    Campaign.objects.create(
        name="World promo",
        bonus_type="B",
        trigger_type=Campaign.TriggerType.PROMO_CODE,
        promo_code=world.promo_code,
        one_per_account=False,
        **common,
    )
    world.campaign, world.campaign_c = type_a.pk, type_c.pk
    for attr, login, campaign in (
        ("bonus_a", world.login_a, type_a),
        ("bonus_c", world.login_c, type_c),
    ):
        bonus = bonus_assign(
            login=login,
            campaign=campaign,
            deal_id=deposit_deal(login),
            override_eligibility=True,
            actor=admin,
        )
        setattr(world, attr, bonus.pk)
    big = mt5.add_account(balance=Decimal("5000.00"), leverage=500, group="real\\standard")
    world.approval = bonus_assign(
        login=big, campaign=type_a, deal_id=deposit_deal(big), actor=world.users["support_agent"]
    ).pk

    # Licensing.
    world.license_account = "ACC-WORLD"
    _, world.license_key = license_create(
        account_id=world.license_account, license_type=License.Type.MONTHLY, duration_days=30
    )
    world.suspended_account = "ACC-SUSPENDED"
    suspended, _ = license_create(
        account_id=world.suspended_account, license_type=License.Type.MONTHLY, duration_days=30
    )
    license_suspend(license=suspended, reason="world")
    world.subscription = subscription_create(user=client, plan_code="premium").pk
    subscription_create(user=world.users["other_client"], plan_code="premium")

    # Trading: the client's accounts, sessions, a settled trade, a channel.
    def account(user, name):
        return broker_account_create(
            user=user,
            account_name=name,
            email=f"{name.lower().replace(' ', '-')}@broker.test",
            password="Broker-pass-1",
            account_type="demo",
        )

    settings = {
        "trade_amount": Decimal("5.00"),
        "gale_limit": 2,
        "stop_profit": Decimal("100.00"),
        "stop_loss": Decimal("50.00"),
    }
    broker_account = account(client, "World main")
    world.broker_account = broker_account.pk
    world.spare_account = account(client, "World spare").pk
    running = session_create(
        user=client, account_id=broker_account.pk, session_name="World running", **settings
    )
    world.session = session_start(session=running).pk
    world.stopped_session = session_create(
        user=client, account_id=broker_account.pk, session_name="World stopped", **settings
    ).pk
    closed = timezone.now() - timedelta(hours=1)
    world.trade = Trade.objects.create(
        user=client,
        session_id=world.session,
        account=broker_account,
        source="manual",
        asset="EURUSD",
        direction="call",
        amount=Decimal("5.00"),
        duration=60,
        result="win",
        profit=Decimal("4.00"),
        created_at=closed - timedelta(seconds=60),
        opened_at=closed - timedelta(seconds=60),
        closed_at=closed,
    ).pk
    account(world.users["other_client"], "Other main")
    world.channel = SignalChannel.objects.create(
        code="world-signals", name="World signals", telegram_chat="@worldsignals"
    ).code
    channel_subscribe(user=client, channel_code=world.channel)

    # Delivery and the demo pool.
    delivery = delivery_create(purpose="test.world:1", payload={"secret": "x"}, method="api")
    world.delivery = delivery.delivery.pk
    world.delivery_token = delivery.link.rstrip("/").rsplit("/", 1)[1]
    demo = SimulatedDemoGateway()
    now = timezone.now()
    for n in range(2):
        created = demo.create_demo_account(
            idempotency_id=f"world-{n}",
            name=f"World demo {n}",
            balance=Decimal("10000.00"),
            leverage=100,
            currency="USD",
        )
        DemoAccount.objects.create(
            login=created.login,
            server=created.server,
            balance=Decimal("10000.00"),
            leverage=100,
            currency="USD",
            status=DemoAccount.Status.AVAILABLE,
            available_at=now,
        )
    world.press_user = "world-press-1"
    press_pass_activate(
        user_id=world.press_user, real_name="Pat Press", delivery_method="api", actor=admin
    )
    world.request = str(
        ActivationRequest.objects.create(
            user_id="world-queued-1", real_name="Quinn Queued", delivery_method="api"
        ).public_id
    )
    return world


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """The module's installation (see the module docstring), rolled back after the module."""
    from django.core.cache import cache

    from gateways.loading import reset_gateways

    with (
        override_settings(**_settings_of_the_world(tmp_path_factory.mktemp("world"))),
        django_db_blocker.unblock(),
    ):
        reset_gateways()
        cache.clear()
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield _build()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            reset_gateways()
            cache.clear()


def path_values(world: World) -> dict[str, dict[str, object]]:
    """{path template: {parameter: a real object's value}} for the paths with parameters."""
    return {
        "/api/v1/admin/users/{account_id}/": {"account_id": world.license_account},
        "/api/v1/admin/users/{account_id}/activate/": {"account_id": world.suspended_account},
        "/api/v1/admin/users/{account_id}/extend-license/": {"account_id": world.license_account},
        "/api/v1/admin/users/{account_id}/suspend/": {"account_id": world.license_account},
        "/api/v1/licenses/{account_id}/file/": {"account_id": world.license_account},
        "/api/v1/bonus-approvals/{id}/": {"id": world.approval},
        "/api/v1/bonus-approvals/{id}/approve/": {"id": world.approval},
        "/api/v1/bonus-approvals/{id}/reject/": {"id": world.approval},
        "/api/v1/bonuses/{id}/": {"id": world.bonus_a},
        "/api/v1/bonuses/{id}/cancel/": {"id": world.bonus_a},
        "/api/v1/bonuses/{id}/force-convert/": {"id": world.bonus_c},
        "/api/v1/bonuses/{id}/override-leverage/": {"id": world.bonus_a},
        "/api/v1/broker-accounts/{id}/": {"id": world.spare_account},
        "/api/v1/broker-accounts/{id}/balance/": {"id": world.broker_account},
        "/api/v1/broker-accounts/{id}/test/": {"id": world.broker_account},
        "/api/v1/campaigns/{id}/": {"id": world.campaign},
        "/api/v1/campaigns/{id}/duplicate/": {"id": world.campaign},
        "/api/v1/campaigns/{id}/status/": {"id": world.campaign},
        "/api/v1/delivery/{id}/": {"id": world.delivery},
        "/api/v1/demo/accounts/{user_id}/health/": {"user_id": world.press_user},
        "/api/v1/demo/requests/{request_id}/": {"request_id": world.request},
        "/api/v1/monitoring/accounts/{login}/": {"login": world.login},
        "/api/v1/monitoring/accounts/{login}/register/": {"login": world.login_free},
        "/api/v1/monitoring/accounts/{login}/reset-errors/": {"login": world.login},
        "/api/v1/monitoring/accounts/{login}/test-deposit/": {"login": world.login},
        "/api/v1/monitoring/accounts/{login}/test-withdraw/": {"login": world.login},
        "/api/v1/mt5/accounts/{login}/": {"login": world.login_a},
        "/api/v1/sessions/{id}/": {"id": world.stopped_session},
        "/api/v1/sessions/{id}/start/": {"id": world.stopped_session},
        "/api/v1/sessions/{id}/status/": {"id": world.session},
        "/api/v1/sessions/{id}/stop/": {"id": world.session},
        "/api/v1/subscriptions/{id}/": {"id": world.subscription},
        "/api/v1/trades/{id}/": {"id": world.trade},
    }


def body_values(world: World) -> dict[str, list[object]]:
    """{body field: real values it may take} (a value replaces a generated one of its type)."""
    return {
        "login": [world.login, world.login_free],
        "campaign_id": [world.campaign, world.campaign_c],
        "session_id": [world.session],
        "account_id": [world.broker_account, world.license_account],
        "channel": [world.channel],
        "code": [world.promo_code],
        "license_key": [world.license_key],
        "token": [world.delivery_token],
        "user_id": [world.press_user],
        "refresh": [world.refresh],
        "email": [world.users["client"].email],
        "password": [PASSWORD],
    }
