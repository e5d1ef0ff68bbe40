import importlib
import os

import pytest

from licensing import ratelimit
from licensing.models import License
from licensing.services import license_create
from licensing.signing import new_private_key_b64

SIGNING_KEY = new_private_key_b64()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "redis: needs Redis; runs whenever REDIS_URL is set (deselected without)"
    )


def pytest_collection_modifyitems(config, items):
    """As the root conftest does for `postgres`: deselected, not skipped, without Redis."""
    if os.environ.get("REDIS_URL"):
        return
    drop = [item for item in items if item.get_closest_marker("redis")]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if not item.get_closest_marker("redis")]


@pytest.fixture
def redis_round_trips(monkeypatch):
    """A counter of requests sent to Redis (each is one round trip) from this process."""
    import redis.connection

    counter = {"sent": 0}
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        counter["sent"] += 1
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return counter


@pytest.fixture
def redis_goes_down(settings):
    """`redis_goes_down()`: from then on every Redis URL of the app points at a closed port."""
    from licensing import redis_client

    def down():
        dead = "redis://127.0.0.1:1/0"
        settings.REDIS_URL = dead
        settings.LICENSE_RATE_LIMIT_REDIS_URL = dead
        ratelimit._limiter = None
        redis_client.redis_for.cache_clear()

    yield down
    redis_client.redis_for.cache_clear()


@pytest.fixture(autouse=True)
def _licensing_settings(settings, tmp_path):
    """A signing key of the test run, a spool folder of the test, a fresh limiter."""
    settings.LICENSE_SIGNING_KEY = SIGNING_KEY
    settings.LICENSE_USAGE_SPOOL_DIR = str(tmp_path / "spool")
    ratelimit._limiter = None
    yield
    ratelimit._limiter = None


@pytest.fixture
def make_license(db):
    """`make_license(license_type=..., **fields)` -> (license, key)."""
    counter = iter(range(1, 10_000))

    def make(license_type=License.Type.MONTHLY, account_id=None, **fields):
        return license_create(
            account_id=account_id or f"ACC{next(counter):04d}",
            license_type=license_type,
            **fields,
        )

    return make


@pytest.fixture(autouse=True)
def _plans(request):
    """The plans the migration seeds (a transactional test before may have flushed them)."""
    if not request.node.get_closest_marker("django_db"):
        if "db" not in request.fixturenames:
            return
        request.getfixturevalue("db")
    from django.apps import apps

    importlib.import_module("licensing.migrations.0002_seed_plans").seed(apps, None)
