"""The soak's world, set up before the faults start: people, keys, a campaign, MT5 accounts,
licenses, clients with running sessions on one signal channel, and a warm demo pool.

What has an API is made through it, over HTTP, as staff and clients would; what has none
(users of staff roles, the integration key, the channel, accounts on the simulated MT5
server) is made with the services and the simulated server's own helpers. Every password,
key and token made here is kept in `World.secrets`, for the scan of the dump and the logs.
"""

import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from accounts.roles import Role
from accounts.services import api_key_create, user_set_roles
from gateways.models import SimulatorKnobs
from gateways.mt5.simulated import SimulatedMT5Gateway
from trading_sessions.models import SignalChannel

from .client import Api, api_key, bearer

SOAK_GROUP = "real\\soak"
STARTING_BALANCE = Decimal("2000.00")
MIN_DEPOSIT = Decimal("10.00")
BONUS_PERCENT = Decimal("10")
SESSION = {
    "trade_amount": "1.00",
    "gale_limit": 2,
    "gale_multiplier": "2.00",
    "stop_profit": "5000.00",
    "stop_loss": "500.00",
}


class SetupError(Exception):
    """The product refused a step of the setup: the soak cannot start."""


@dataclass
class Person:
    """A user the soak logs in as."""

    email: str
    password: str
    access: str = ""
    refresh: str = ""

    @property
    def auth(self) -> str:
        return bearer(self.access)


@dataclass
class TradingClient(Person):
    """A client with a broker account, a running session, subscribed to the soak channel."""

    broker_email: str = ""
    broker_password: str = ""
    broker_account_id: int = 0
    session_id: int = 0


@dataclass
class World:
    tag: str
    started_at: object
    admin: Person
    integration_key: str
    campaign_id: int = 0
    logins: list[int] = field(default_factory=list)
    license_keys: list[str] = field(default_factory=list)
    clients: list[TradingClient] = field(default_factory=list)
    channel: str = ""
    knobs_before: dict[str, dict[str, object]] = field(default_factory=dict)
    secrets: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def secret(self, kind: str, *values: str) -> None:
        """Keep what the scan must not find anywhere."""
        self.secrets[kind].update(value for value in values if value)

    @property
    def integration(self) -> str:
        return api_key(self.integration_key)

    @property
    def session_ids(self) -> list[int]:
        return [client.session_id for client in self.clients]

    @property
    def broker_emails(self) -> list[str]:
        return [client.broker_email for client in self.clients]


def password() -> str:
    """A fresh password that passes the validators (and is easy to grep for)."""
    return "Sk-" + secrets.token_urlsafe(18)


def expect(answer, *statuses: int, what: str):
    if not answer.ok(*statuses):
        shown = answer.status if answer.status is not None else answer.error
        raise SetupError(f"{what}: HTTP {shown} {answer.text[:300]}")
    return answer.data


def login(api: Api, person: Person) -> None:
    data = expect(
        api.call(
            "POST",
            "/api/v1/auth/token/",
            json={"email": person.email, "password": person.password},
        ),
        200,
        what=f"log in as {person.email}",
    )
    person.access, person.refresh = data["access"], data["refresh"]


def world_build(
    api: Api, *, tag: str, accounts: int, licenses: int, clients: int, pool: int, say=print
) -> World:
    """Set the world up (faults off); `say` reports progress."""
    admin = Person(email=f"admin-{tag}@soak.test", password=password())
    user = User.objects.create_user(email=admin.email, password=admin.password)
    user_set_roles(user=user, roles=[Role.SUPER_ADMIN])
    robot = User.objects.create_user(email=f"integration-{tag}@soak.test", password=password())
    # The integration's powers are its key's scopes (its user is a plain client).
    key_row, key = api_key_create(user=robot, name=f"soak {tag}", scopes=["demo", "signals"])
    world = World(tag=tag, started_at=timezone.now(), admin=admin, integration_key=key)
    world.secret("user passwords", admin.password)
    world.secret("API keys", key, key.split(".", 1)[1])
    login(api, admin)
    world.secret("JWT tokens", admin.access, admin.refresh)
    say(f"  staff user and integration key ({key_row.prefix}...)")
    workers_wait(api, admin)

    world.campaign_id = _campaign(api, world)
    say(f"  campaign {world.campaign_id}: Type B, {BONUS_PERCENT}% of deposits >= {MIN_DEPOSIT}")
    world.logins = _mt5_accounts(api, world, accounts)
    say(f"  {len(world.logins)} MT5 accounts in {SOAK_GROUP}, watched by the monitor")
    world.license_keys = _licenses(api, world, licenses)
    world.secret("license keys", *world.license_keys)
    say(f"  {len(world.license_keys)} licenses")
    world.channel = SignalChannel.objects.create(code=f"soak-{tag}", name=f"Soak {tag}").code
    world.clients = [_trading_client(api, world, n) for n in range(clients)]
    for client in world.clients:
        world.secret("user passwords", client.password)
        world.secret("broker passwords", client.broker_password)
        world.secret("JWT tokens", client.access, client.refresh)
    say(f"  {len(world.clients)} clients with a running session on channel {world.channel}")
    available = _warm_pool(api, world, pool)
    say(f"  demo pool: {available} accounts available")
    return world


def workers_wait(api: Api, admin: Person, *, seconds: float = 90) -> None:
    """Beat and a worker run: the monitor swept within the last half minute (beat queues a
    sweep every second, a worker runs it). Waits up to `seconds` for one."""
    deadline = time.monotonic() + seconds
    while True:
        data = expect(
            api.call("GET", "/api/v1/monitoring/status/", auth=admin.auth),
            200,
            what="read the monitor's status",
        )
        last = data.get("last_sweep_at")
        if last:
            last_at = parse_datetime(last)
            assert last_at is not None  # the API answers ISO 8601
            if timezone.now() - last_at < timedelta(seconds=30):
                return
        if time.monotonic() > deadline:
            raise SetupError(
                "no monitor sweep in the last 30 s: are the worker and beat running? "
                "(make run, or make soak, starts them)"
            )
        time.sleep(2)


def _campaign(api: Api, world: World) -> int:
    auth = world.admin.auth
    data = expect(
        api.call(
            "POST",
            "/api/v1/campaigns/",
            auth=auth,
            json={
                "name": f"Soak {world.tag}",
                "bonus_type": "B",
                "percentage": str(BONUS_PERCENT),
                "min_deposit": str(MIN_DEPOSIT),
                "trigger_type": "auto_deposit",
                "target_groups": [SOAK_GROUP],
                "one_per_account": False,
            },
        ),
        201,
        what="create the campaign",
    )
    expect(
        api.call(
            "PATCH",
            f"/api/v1/campaigns/{data['id']}/status/",
            label="PATCH /api/v1/campaigns/{id}/status/",
            auth=auth,
            json={"status": "active"},
        ),
        200,
        what="activate the campaign",
    )
    return data["id"]


def _mt5_accounts(api: Api, world: World, count: int) -> list[int]:
    server = SimulatedMT5Gateway()
    logins = []
    for n in range(count):
        login = server.add_account(
            name=f"Soak {world.tag} {n}",
            group=SOAK_GROUP,
            country="United Kingdom",
            balance=STARTING_BALANCE,
            registered_at=timezone.now() - timedelta(days=30),
        )
        expect(
            api.call(
                "POST",
                f"/api/v1/monitoring/accounts/{login}/register/",
                label="POST /api/v1/monitoring/accounts/{login}/register/",
                auth=world.admin.auth,
            ),
            200,
            what=f"register {login} with the monitor",
        )
        logins.append(login)
    return logins


def _licenses(api: Api, world: World, count: int) -> list[str]:
    keys = []
    for n in range(count):
        data = expect(
            api.call(
                "POST",
                "/api/v1/admin/users/",
                auth=world.admin.auth,
                json={
                    "account_id": f"soak-{world.tag}-{n}",
                    "email": f"licensee-{n}-{world.tag}@soak.test",
                    "license_type": "MONTHLY",
                },
            ),
            201,
            what="create a license",
        )
        keys.append(data["license_key"])
    return keys


def _trading_client(api: Api, world: World, n: int) -> TradingClient:
    client = TradingClient(
        email=f"client-{n}-{world.tag}@soak.test",
        password=password(),
        broker_email=f"trader-{n}-{world.tag}@soak.test",
        broker_password=password(),
    )
    data = expect(
        api.call(
            "POST",
            "/api/v1/auth/register/",
            json={"email": client.email, "password": client.password},
        ),
        201,
        what="sign a client up",
    )
    client.access, client.refresh = data["access"], data["refresh"]
    auth = client.auth
    expect(
        api.call("POST", "/api/v1/subscriptions/", auth=auth, json={"plan": "vip"}),
        201,
        what="subscribe to VIP",
    )
    account = expect(
        api.call(
            "POST",
            "/api/v1/broker-accounts/",
            auth=auth,
            json={
                "account_name": "Soak demo",
                "email": client.broker_email,
                "password": client.broker_password,
                "account_type": "demo",
            },
        ),
        201,
        what="add a broker account",
    )
    client.broker_account_id = account["id"]
    session = expect(
        api.call(
            "POST",
            "/api/v1/sessions/",
            auth=auth,
            json={"session_name": f"Soak {n}", "account_id": account["id"], **SESSION},
        ),
        201,
        what="create a session",
    )
    client.session_id = session["id"]
    expect(
        api.call(
            "POST",
            f"/api/v1/sessions/{client.session_id}/start/",
            label="POST /api/v1/sessions/{id}/start/",
            auth=auth,
        ),
        200,
        what="start the session",
    )
    expect(
        api.call(
            "POST", "/api/v1/trades/signals/subscribe/", auth=auth, json={"channel": world.channel}
        ),
        200,
        201,
        what="subscribe to the soak channel",
    )
    return client


def _warm_pool(api: Api, world: World, wanted: int, *, wait_seconds: float = 120) -> int:
    """Ask for `wanted` accounts and wait (bounded) until at least half are available."""
    status = expect(
        api.call("GET", "/api/v1/demo/pool/status/", auth=world.integration),
        200,
        what="read the pool status",
    )
    missing = max(0, wanted - status["available"] - status["provisioning"])
    if missing:
        expect(
            api.call(
                "POST",
                "/api/v1/demo/pool/replenish/",
                auth=world.integration,
                params={"count": missing},
            ),
            202,
            what="replenish the pool",
        )
    deadline = time.monotonic() + wait_seconds
    while status["available"] < wanted // 2 and time.monotonic() < deadline:
        time.sleep(2)
        status = expect(
            api.call("GET", "/api/v1/demo/pool/status/", auth=world.integration),
            200,
            what="read the pool status",
        )
    return status["available"]


def world_close(api: Api, world: World) -> None:
    """Leave nothing running that a later soak on this database would meet: the campaign
    ends (later deposits on these accounts grant nothing), the sessions stop. Logs in again
    first: the access tokens of a long run have expired."""
    login(api, world.admin)
    api.call(
        "PATCH",
        f"/api/v1/campaigns/{world.campaign_id}/status/",
        auth=world.admin.auth,
        json={"status": "ended"},
    )
    for client in world.clients:
        login(api, client)
        api.call("POST", f"/api/v1/sessions/{client.session_id}/stop/", auth=client.auth)


# --- The fault knobs ------------------------------------------------------------------------


def knobs_turn_on(
    world: World,
    *,
    error_rate: Decimal,
    latency_ms: int,
    forbidden_rate: Decimal = Decimal(0),
    drop_rate: Decimal = Decimal(0),
) -> None:
    """Every simulated server fails `error_rate` of its calls after `latency_ms`; the MT5 Web
    API stand-in also answers `forbidden_rate` of them 403 (session forgotten) and drops the
    connection after the work on `drop_rate`. The values they had are kept to be put back."""
    for server in SimulatorKnobs.Server.values:
        knobs, _ = SimulatorKnobs.objects.get_or_create(server=server)
        wanted = {"latency_ms": latency_ms, "error_rate": error_rate}
        if server == SimulatorKnobs.Server.MT5_WEBAPI:
            wanted |= {"forbidden_rate": forbidden_rate, "drop_rate": drop_rate}
        world.knobs_before.setdefault(server, {name: getattr(knobs, name) for name in wanted})
        for name, value in wanted.items():
            setattr(knobs, name, value)
        knobs.save(update_fields=[*wanted, "updated_at"])


def knobs_restore(world: World) -> None:
    """Put back the values the knobs had before the soak."""
    for server, before in world.knobs_before.items():
        SimulatorKnobs.objects.filter(server=server).update(**before)
