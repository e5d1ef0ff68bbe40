"""`manage.py sessions list|stop`: what operators run."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from trading_sessions.models import TradingSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_traders(make_user, make_session):
    """Two users, each with a running session; the first also has a stopped one."""
    alice, bob = make_user(email="alice@example.com"), make_user(email="bob@example.com")
    running = make_session(alice, session_name="Alice runs")
    make_session(alice, account=running.account, start=False, session_name="Alice idle")
    make_session(bob, session_name="Bob runs")
    return alice, bob


def run(*args) -> str:
    out = StringIO()
    call_command("sessions", *args, stdout=out)
    return out.getvalue()


def test_list_shows_every_session_with_its_owner_and_stats(two_traders):
    out = run("list")

    lines = out.splitlines()
    assert lines[0].split() == [
        "id",
        "user",
        "name",
        "active",
        "net",
        "profit",
        "trades",
        "stop",
        "reason",
    ]
    assert "Alice runs" in out and "Alice idle" in out and "Bob runs" in out
    alice_runs = next(line for line in lines if "Alice runs" in line)
    assert "alice@example.com" in alice_runs
    assert alice_runs.split()[-4:] == ["yes", "0.00", "0", "-"]
    assert lines[-1] == "3 session(s)"


def test_list_narrows_to_one_user_and_to_running_sessions(two_traders):
    mine = run("list", "--user", "ALICE@example.com")
    running = run("list", "--user", "alice@example.com", "--active")

    assert "Bob runs" not in mine and "Alice idle" in mine
    assert "Alice runs" in running and "Alice idle" not in running


def test_stop_user_stops_that_users_sessions_only(two_traders):
    alice, bob = two_traders

    out = run("stop", "--user", "alice@example.com")

    assert "stopped 1 session(s) of alice@example.com" in out
    assert not TradingSession.objects.filter(user=alice, is_active=True).exists()
    assert TradingSession.objects.get(user=bob).is_active
    stopped = TradingSession.objects.get(session_name="Alice runs")
    assert stopped.stop_reason == TradingSession.StopReason.OPERATOR


def test_stop_all_stops_every_running_session(two_traders):
    out = run("stop", "--all")

    assert "stopped 2 session(s) of all users" in out
    assert not TradingSession.objects.filter(is_active=True).exists()
    assert set(TradingSession.objects.values_list("stop_reason", flat=True)) == {"operator", ""}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("stop",), "either --user EMAIL or --all"),
        (("stop", "--all", "--user", "alice@example.com"), "either --user EMAIL or --all"),
        (("stop", "--user", "nobody@example.com"), "No user with the email 'nobody@example.com'"),
        (("list", "--user", "nobody@example.com"), "No user with the email"),
    ],
)
def test_a_missing_flag_or_unknown_user_is_a_clear_error(two_traders, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert TradingSession.objects.filter(is_active=True).count() == 2
