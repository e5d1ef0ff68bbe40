"""Fixtures of the demo pool tests.

- Fixed encryption keys and link base, whatever the environment holds.
- `demo_gateway`: the simulated demo server with faults on demand, installed as the gateway
  (`fail_next("create_demo_account", TransientGatewayError, after_write=True)` creates the
  account and then loses the answer, like a timeout).
- `pool_config(**fields)`: the pool's configuration row with these values.
- `fill(n)`: n available accounts, provisioned through the real queue.
- `reveal(link)`: the payload behind a one-time link.
"""

import base64

import pytest

from demo_pool.services.common import pool_config_forget, refill_nudge_forget
from gateways.demo.simulated import SimulatedDemoGateway
from gateways.errors import TransientGatewayError
from gateways.loading import reset_gateways

KEY = "k1:" + base64.b64encode(bytes(range(32))).decode()


class FaultyDemoGateway(SimulatedDemoGateway):
    """The simulated server; the next calls of a method can fail on purpose."""

    faults: dict = {}
    calls: dict = {}
    hold = None  # a (entered, release) pair of threading.Events to hold create_demo_account

    def fail_next(self, method, error=TransientGatewayError, *, after_write=False, times=1):
        self.faults.setdefault(method, []).extend([(error, after_write)] * times)

    def _maybe_fail(self, name, call):
        self.calls[name] = self.calls.get(name, 0) + 1
        queue = self.faults.get(name)
        if queue:
            error, after_write = queue.pop(0)
            if after_write:
                call()
            raise error("injected fault", gateway="demo")
        return call()

    def create_demo_account(self, **kwargs):
        if self.hold is not None:
            entered, release = self.hold
            entered.set()
            release.wait(timeout=30)
        return self._maybe_fail(
            "create_demo_account",
            lambda: super(FaultyDemoGateway, self).create_demo_account(**kwargs),
        )

    def change_password(self, login, password):
        return self._maybe_fail(
            "change_password",
            lambda: super(FaultyDemoGateway, self).change_password(login, password),
        )

    def check_account(self, login):
        return self._maybe_fail(
            "check_account", lambda: super(FaultyDemoGateway, self).check_account(login)
        )

    def disable_account(self, login):
        return self._maybe_fail(
            "disable_account", lambda: super(FaultyDemoGateway, self).disable_account(login)
        )


@pytest.fixture(autouse=True)
def _demo_settings(settings):
    settings.ENCRYPTION_KEYS = KEY
    settings.PUBLIC_BASE_URL = "https://desk.example"
    settings.DELIVERY_REVEAL_RATE_LIMIT = "1000/min"
    settings.DEMO_GATEWAY = "tests.demo_pool.conftest.FaultyDemoGateway"
    settings.DEMO_POOL_PROVISION_BACKOFF_SECONDS = 5.0
    FaultyDemoGateway.faults = {}
    FaultyDemoGateway.calls = {}
    FaultyDemoGateway.hold = None
    reset_gateways()
    pool_config_forget()
    refill_nudge_forget()
    yield
    reset_gateways()
    pool_config_forget()


@pytest.fixture
def admin_api(make_user, as_user):
    from accounts.roles import Role

    return as_user(make_user(role=Role.SUPER_ADMIN))


@pytest.fixture
def demo_gateway(db):
    from gateways.demo import get_demo_gateway

    return get_demo_gateway()


@pytest.fixture
def pool_config(db):
    from demo_pool.models import PoolConfig

    def configure(**fields):
        config = PoolConfig.load()
        for name, value in fields.items():
            setattr(config, name, value)
        config.save()
        return config

    return configure


@pytest.fixture
def fill(db, pool_config):
    from demo_pool.services import provisioning_enqueue, provisioning_process

    def make(n):
        queued = provisioning_enqueue(count=n)
        provisioning_process(limit=n + 10)
        return queued

    return make


@pytest.fixture
def reveal():
    from delivery.services import delivery_reveal

    def open_link(link):
        token = link.rstrip("/").rsplit("/", 1)[1]
        return delivery_reveal(token=token, ip="127.0.0.1").payload

    return open_link
