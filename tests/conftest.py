"""Test-wide setup.

Tests marked `postgres` run whenever DATABASE_URL points at PostgreSQL and are deselected
(not skipped) on SQLite. When DATABASE_URL or REDIS_URL is set, the service must answer:
a run that silently fell back to SQLite or locmem would prove nothing.
"""

import atexit
import os
import shutil
import tempfile

import pytest


def pytest_sessionstart(session):
    _own_cache_directory()
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")):
        import psycopg

        try:
            psycopg.connect(
                database_url.replace("postgres://", "postgresql://", 1), connect_timeout=5
            ).close()
        except psycopg.Error as exc:
            pytest.exit(f"DATABASE_URL is set but PostgreSQL does not answer: {exc}", returncode=3)
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        import redis

        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
        except redis.RedisError as exc:
            pytest.exit(f"REDIS_URL is set but Redis does not answer: {exc}", returncode=3)


def _own_cache_directory():
    """Without Redis the cache is files (core/cache.py, the embedded default): this run gets its
    own directory, also for the processes it starts, so a `make run` or another test run in the
    same checkout neither sees nor clears its entries."""
    from django.conf import settings

    if settings.CACHES["default"]["BACKEND"] != "core.cache.FileCache":
        return
    directory = tempfile.mkdtemp(prefix="brokerdesk-test-cache-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    settings.CACHES["default"]["LOCATION"] = directory
    os.environ["CACHE_DIR"] = directory


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("postgres") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 is slow on purpose; tests check behaviour, not hashing cost."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttles and heartbeats live in the cache: every test starts from an empty one."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def make_user(db):
    """`make_user(role=Role.SUPPORT_AGENT)`: a user holding that staff role (None: a client)."""
    from accounts.services import roles_sync, user_set_roles
    from tests.factories import UserFactory

    roles_sync()

    def make(role=None, **fields):
        user = UserFactory(**fields)
        if role is not None:
            user_set_roles(user=user, roles=[role])
        return user

    return make


@pytest.fixture
def as_user(api):
    """`as_user(user)`: the API client, authenticated with a fresh JWT access token."""
    from rest_framework_simplejwt.tokens import RefreshToken

    def login(user):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return api

    return login
