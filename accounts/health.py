"""Is each part this process needs answering? Read by /readyz and `manage.py doctor`."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection

logger = logging.getLogger(__name__)

HEARTBEAT_CACHE_KEY = "accounts:heartbeat"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    ms: float


def _timed(name: str, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # a health check reports every failure, whatever it is
        detail, ok = f"{type(exc).__name__}: {exc}".strip(), False
    return CheckResult(name, ok, detail, round((time.perf_counter() - started) * 1000, 1))


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"{connection.vendor} answers"


def check_cache() -> str:
    key = "health:probe"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")
    return settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]


# Backends that each process keeps for itself: web, worker and beat run as separate processes
# (and gunicorn and Celery fork more), so the sweep record, locks and limits would not cross.
PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "kept in each process's memory",
    "django.core.cache.backends.dummy.DummyCache": "a dummy that keeps nothing",
}


def check_shared_cache() -> str:
    backend = settings.CACHES["default"]["BACKEND"]
    if backend in PER_PROCESS_CACHES:
        raise RuntimeError(
            f"the cache is {PER_PROCESS_CACHES[backend]}: web, worker and beat would not see each "
            "other's monitor sweeps, locks and limits; set REDIS_URL, or leave CACHES to the "
            "embedded file cache"
        )
    location = settings.CACHES["default"].get("LOCATION", "")
    where = f" at {location}" if backend == "core.cache.FileCache" else ""
    return f"{backend.rsplit('.', 1)[-1]}{where}, shared by every process"


def check_broker() -> str:
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        return f"{conn.transport_cls} answers"


def check_gateways() -> str:
    from gateways.broker import get_broker_gateway
    from gateways.demo import get_demo_gateway
    from gateways.mt5 import get_mt5_gateway
    from gateways.telegram import get_telegram_gateway

    names = []
    for getter in (get_mt5_gateway, get_demo_gateway, get_broker_gateway, get_telegram_gateway):
        gateway = getter()
        gateway.ping()
        names.append(type(gateway).__name__)
    return ", ".join(names)


def check_beat_schedule() -> str:
    current_app.loader.import_default_modules()
    missing = [
        f"{name} -> {entry['task']}"
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] not in current_app.tasks
    ]
    if missing:
        raise RuntimeError("beat entries name unknown tasks: " + "; ".join(missing))
    return f"{len(settings.CELERY_BEAT_SCHEDULE)} entries, every task known"


def check_keys() -> str:
    problems = []
    if not settings.DEBUG and "insecure" in settings.SECRET_KEY:
        problems.append("SECRET_KEY is the local development key")
    if len(settings.SECRET_KEY) < 50:
        problems.append("SECRET_KEY is shorter than 50 characters")
    if problems:
        raise RuntimeError("; ".join(problems))
    return "SECRET_KEY set"


# Doctor waits at most this long for each MT5 Web API request (the check makes about ten).
DOCTOR_MT5_TIMEOUT_SECONDS = 10.0


def _mt5_webapi_check(demo: bool) -> Callable[[], str]:
    def check_mt5_webapi() -> str:
        """`manage.py mt5 check` (or `--demo`) as one line: what is wrong, or a summary."""
        from gateways.mt5.webapi.check import check, demo_connection, live_connection

        pick = demo_connection if demo else live_connection
        timeout = min(settings.MT5_REQUEST_TIMEOUT_SECONDS, DOCTOR_MT5_TIMEOUT_SECONDS)
        report = check(pick(timeout=timeout))
        if not report.ok:
            raise RuntimeError(report.verdict())
        return report.verdict()

    return check_mt5_webapi


READINESS_CHECKS = {"database": check_database, "cache": check_cache, "broker": check_broker}
DOCTOR_CHECKS = {
    **READINESS_CHECKS,
    "shared cache": check_shared_cache,
    "gateways": check_gateways,
    "beat schedule": check_beat_schedule,
    "keys": check_keys,
}


def doctor_checks() -> dict[str, Callable[[], str]]:
    """DOCTOR_CHECKS, plus the MT5 Web API check when that gateway is configured and the demo
    server's when MT5_DEMO_URL is set."""
    from gateways.mt5.webapi.check import WEBAPI_GATEWAY

    checks = dict(DOCTOR_CHECKS)
    if settings.MT5_GATEWAY == WEBAPI_GATEWAY:
        checks["mt5 web api"] = _mt5_webapi_check(demo=False)
    if getattr(settings, "MT5_DEMO_URL", ""):
        checks["mt5 demo"] = _mt5_webapi_check(demo=True)
    return checks


def run_checks(checks: dict[str, Callable[[], str]]) -> list[CheckResult]:
    """Run every check, each isolated: one failing never hides the others."""
    return [_timed(name, check) for name, check in checks.items()]
