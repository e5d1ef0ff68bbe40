"""What operators run: bootstrap, doctor, the deploy check, the beat heartbeat."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from accounts.roles import Role
from accounts.services import user_roles

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env):
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_bootstrap_is_idempotent_and_seeds_one_user_per_role(settings, capsys):
    settings.DEBUG = True  # the local, `make run` case (pytest-django turns DEBUG off)
    call_command("bootstrap")
    call_command("bootstrap")
    out = capsys.readouterr().out
    assert "demo users: 0 created, 5 already there" in out
    assert "simulated MT5 accounts: 0 created" in out
    for email, role in [
        ("admin@brokerdesk.local", Role.SUPER_ADMIN),
        ("manager@brokerdesk.local", Role.CAMPAIGN_MANAGER),
        ("support@brokerdesk.local", Role.SUPPORT_AGENT),
        ("viewer@brokerdesk.local", Role.READ_ONLY),
    ]:
        user = User.objects.get(email=email)
        assert user_roles(user) == {role.value}
        assert user.is_staff


@pytest.mark.django_db
def test_bootstrap_seeds_the_ten_simulated_mt5_accounts(settings):
    from gateways.mt5 import get_mt5_gateway

    settings.DEBUG = True
    call_command("bootstrap")
    logins = get_mt5_gateway().list_logins()
    assert set(range(10001, 10011)) <= set(logins)


@pytest.mark.django_db
def test_bootstrap_has_the_monitor_watch_the_simulated_accounts_from_the_start(settings):
    from accounts.models import MonitoredAccount

    settings.DEBUG = True
    settings.MT5_GATEWAY = "gateways.mt5.simulated.SimulatedMT5Gateway"
    call_command("bootstrap")
    call_command("bootstrap")

    watched = set(MonitoredAccount.objects.values_list("login", flat=True))
    assert set(range(10001, 10011)) <= watched


@pytest.mark.django_db
def test_bootstrap_never_creates_demo_users_with_debug_off(settings, capsys):
    settings.DEBUG = False
    call_command("bootstrap")
    assert "DEBUG is off: no demo users" in capsys.readouterr().out
    assert not User.objects.filter(email__endswith="@brokerdesk.local").exists()


@pytest.mark.django_db
def test_doctor_passes_when_everything_answers(settings, capsys):
    settings.DEBUG = True  # the development key is accepted only while DEBUG is on
    call_command("doctor")
    out = capsys.readouterr().out
    for name in (
        "database",
        "cache",
        "broker",
        "shared cache",
        "gateways",
        "beat schedule",
        "keys",
    ):
        assert f"ok   {name}" in out
    assert "all checks passed" in out


@pytest.mark.django_db
def test_doctor_flags_a_cache_each_process_keeps_for_itself(settings, capsys):
    """Under locmem the web never saw the worker's sweeps: "Last monitor sweep: never"."""
    settings.DEBUG = True
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with pytest.raises(CommandError, match="shared cache"):
        call_command("doctor")
    out = capsys.readouterr().out
    assert "FAIL shared cache" in out
    assert "would not see each other's monitor sweeps" in out


def test_doctor_fails_clearly_when_the_database_is_unreachable(tmp_path):
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    result = run_manage(
        "doctor",
        DATABASE_URL="postgres://nobody@127.0.0.1:9/nothing",
        REDIS_URL="",
    )
    assert result.returncode != 0
    assert "FAIL database" in result.stdout
    assert "check(s) failed: database" in result.stderr


# Made for these tests only: random bytes, never used anywhere else.
PRODUCTION_KEYS = {
    "ENCRYPTION_KEYS": "k2:" + base64.b64encode(os.urandom(32)).decode(),
    "LICENSE_KEY_PEPPER": base64.b64encode(os.urandom(32)).decode(),
    "LICENSE_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
    "EMAIL_HOST": "smtp.example.com",  # production sends through SMTP (tests/test_email_backend.py)
}


def test_production_settings_pass_the_deploy_check():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="k" * 20 + "Zr8#vQ2!mP5@xL9$wT3^bN7&cJ1*hF6(",
        ALLOWED_HOSTS="backoffice.example.com",
        **PRODUCTION_KEYS,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("ENCRYPTION_KEYS", "ENCRYPTION_KEYS must be set"),
        ("LICENSE_KEY_PEPPER", "LICENSE_KEY_PEPPER must be set"),
        ("LICENSE_SIGNING_KEY", "LICENSE_SIGNING_KEY must be set"),
    ],
)
def test_production_refuses_to_start_without_each_of_its_keys(missing, message):
    keys = {**PRODUCTION_KEYS, missing: ""}
    result = run_manage("check", DEBUG="false", SECRET_KEY="s" * 50, **keys)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_the_heartbeat_task_leaves_its_time_in_the_cache():
    from django.core.cache import cache

    from accounts.health import HEARTBEAT_CACHE_KEY
    from accounts.tasks import heartbeat

    at = heartbeat()
    assert cache.get(HEARTBEAT_CACHE_KEY) == at


def test_every_beat_entry_names_a_registered_task_with_an_expiry():
    from django.conf import settings

    from config import celery_app

    celery_app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in celery_app.tasks, name
        assert "expire_seconds" in entry["options"], name


@pytest.mark.django_db
def test_doctor_refuses_the_development_key_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="keys"):
        call_command("doctor")


@pytest.mark.django_db
def test_doctor_names_a_beat_entry_whose_task_does_not_exist(settings):
    settings.CELERY_BEAT_SCHEDULE = {
        **settings.CELERY_BEAT_SCHEDULE,
        "ghost": {"task": "nowhere.ghost", "schedule": 5, "options": {"expire_seconds": 4}},
    }
    with pytest.raises(CommandError, match="beat schedule"):
        call_command("doctor")


def test_every_command_of_ours_prints_its_help():
    """`manage.py <command> --help` is an operator's first step: a stray `%` in a help text
    made argparse crash with a traceback instead (bench_monitor's "1% of accounts")."""
    from django.core.management import get_commands, load_command_class

    ours = {
        name: app
        for name, app in get_commands().items()
        if not app.startswith(("django", "rest_framework", "celery", "django_"))
        and (ROOT / app.replace(".", "/")).is_dir()
    }
    assert {"bench_monitor", "mt5", "doctor", "bootstrap"} <= set(ours)
    for name, app in sorted(ours.items()):
        parser = load_command_class(app, name).create_parser("manage.py", name)
        assert name in parser.format_help(), name
