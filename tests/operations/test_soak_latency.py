"""The soak's deposit delays: measured from the deal on the server to the event, the bonus and
the credit, and a deposit granted later than the limit fails the check, saying how late."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import monitor_discover, monitor_sweep
from campaigns.models import Campaign
from gateways.loading import reset_gateways
from gateways.models import SimulatedMT5Account
from gateways.mt5.simulated import SimulatedMT5Gateway
from operations.soak.invariants import Scope
from operations.soak.latency import check_deposit_delays, percentile

pytestmark = pytest.mark.django_db

COMMENT = "soak deposit"


@pytest.fixture
def watched(settings):
    """One month-old account watched by the monitor, and a live 10% Type B campaign."""
    settings.MT5_GATEWAY = "gateways.mt5.simulated.SimulatedMT5Gateway"
    reset_gateways()
    server = SimulatedMT5Gateway()
    login = server.add_account(group="real\\soak", balance="1000.00")
    SimulatedMT5Account.objects.filter(pk=login).update(
        registered_at=timezone.now() - timedelta(days=30)
    )
    monitor_discover()
    campaign = Campaign.objects.create(
        name="Soak",
        status=Campaign.Status.ACTIVE,
        bonus_type=Campaign.BonusType.B,
        percentage=Decimal("10"),
        min_deposit=Decimal("10.00"),
        one_per_account=False,
    )
    scope = Scope(
        since=timezone.now() - timedelta(minutes=1),
        campaign_ids=[campaign.pk],
        logins=[login],
        deposit_comment=COMMENT,
        min_deposit=Decimal("10.00"),
    )
    yield server, login, scope
    reset_gateways()


def later(time_machine, seconds: int) -> None:
    time_machine.move_to(timezone.now() + timedelta(seconds=seconds), tick=False)


def test_deposits_granted_in_time_hold_and_each_stage_is_measured(watched, time_machine):
    server, login, scope = watched
    for wait in (2, 4):
        server.post_balance(login, Decimal("100.00"), comment=COMMENT)
        later(time_machine, wait)
        monitor_sweep()
    server.post_balance(login, Decimal("5.00"), comment=COMMENT)  # under the minimum: not due

    check = check_deposit_delays(scope, within=10)

    assert check.held, check.problems
    assert check.counts == {
        "qualifying deposits": 2,
        "deposit -> event recorded": "median 2.0 s, p95 4.0 s, max 4.0 s; 2 of 2 within 10 s",
        "deposit -> bonus granted": "median 2.0 s, p95 4.0 s, max 4.0 s; 2 of 2 within 10 s",
        "deposit -> credit on the server": (
            "median 2.0 s, p95 4.0 s, max 4.0 s; 2 of 2 within 10 s"
        ),
    }


def test_a_deposit_granted_late_or_never_fails_the_check(watched, time_machine):
    server, login, scope = watched
    server.post_balance(login, Decimal("100.00"), comment=COMMENT)
    later(time_machine, 15)
    monitor_sweep()
    server.post_balance(login, Decimal("50.00"), comment=COMMENT)  # never swept

    check = check_deposit_delays(scope, within=10)

    assert not check.held
    assert check.problems == [
        "1 deposit(s) granted later than 10 s (the slowest after 15.0 s)",
        "1 deposit(s) never granted",
    ]
    assert check.counts["deposit -> bonus granted"] == (
        "median 15.0 s, p95 15.0 s, max 15.0 s; 0 of 2 within 10 s (1 never)"
    )


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 21)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (
        10.0,
        19.0,
        20.0,
    )
    assert percentile([7.0], 95) == 7.0
