"""Test-wide setup.

Tests marked `postgres` run whenever DATABASE_URL points at PostgreSQL and are deselected
(not skipped) on SQLite. When DATABASE_URL or REDIS_URL is set, the service must answer:
a run that silently fell back to SQLite or locmem would prove nothing.
"""

import os

import pytest


def pytest_sessionstart(session):
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
