import importlib

import pytest

from licensing import ratelimit
from licensing.models import License
from licensing.services import license_create
from licensing.signing import new_private_key_b64

SIGNING_KEY = new_private_key_b64()


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
