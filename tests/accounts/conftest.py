"""Fixtures of the accounts tests: the simulated MT5 server and campaigns come from the bonus
tests (the monitor's end-to-end checks grant real bonuses)."""

import pytest

from tests.bonuses.conftest import (  # noqa: F401
    _simulated_mt5,
    account,
    campaign_factory,
    mt5,
)


@pytest.fixture
def watched(request):
    """The demo accounts 10001-10010 on the simulated server (`mt5`), registered for
    monitoring; returns that server."""
    from accounts.services import monitor_discover
    from gateways.mt5.simulated import seed_demo_accounts

    server = request.getfixturevalue("mt5")
    seed_demo_accounts()
    monitor_discover()
    return server
