"""`manage.py monitor_sweep`: discovery, one sweep, the counts one per line."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import MonitoredAccount
from accounts.services import monitor_test_deal
from gateways.mt5.simulated import seed_demo_accounts

pytestmark = pytest.mark.django_db

FIELDS = [
    "accounts",
    "changed",
    "deposits",
    "withdrawals",
    "drawdowns",
    "trades",
    "errors",
    "paused",
    "batches",
    "dispatched",
    "ms",
]


def run(*args) -> dict[str, int]:
    out = StringIO()
    call_command("monitor_sweep", *args, stdout=out)
    counts = {}
    for line in out.getvalue().splitlines():
        name, value = line.split(": ")
        counts[name] = int(value)
    return counts


def test_the_command_registers_the_new_logins_then_sweeps_them_and_prints_every_count(mt5):
    seed_demo_accounts()

    counts = run()

    assert list(counts) == ["discovered", *FIELDS]
    assert counts["discovered"] == 10
    assert (counts["accounts"], counts["deposits"], counts["errors"]) == (10, 0, 0)
    assert MonitoredAccount.objects.count() == 10


def test_without_discovery_it_sweeps_only_the_accounts_already_monitored(mt5):
    seed_demo_accounts()

    counts = run("--no-discover")

    assert list(counts) == FIELDS
    assert counts["accounts"] == 0
    assert not MonitoredAccount.objects.exists()


def test_the_command_detects_a_test_deposit_in_batches_of_the_size_asked(watched):
    monitor_test_deal(login=10001, amount=Decimal("75.00"))
    monitor_test_deal(login=10002, amount=Decimal("-10.00"))

    counts = run("--no-discover", "--batch-size", "3")

    assert (counts["accounts"], counts["batches"]) == (10, 4)
    assert (counts["deposits"], counts["withdrawals"], counts["changed"]) == (1, 1, 2)
    assert counts["dispatched"] == 2


def test_a_batch_size_below_one_is_refused(mt5):
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("monitor_sweep", "--batch-size", "0", stdout=StringIO())
