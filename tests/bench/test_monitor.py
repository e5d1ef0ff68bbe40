"""`bench_monitor --gateway webapi`'s own pieces (the timed run itself is `make bench`, never a
test): the stand-in in its own process on the test database, one quiet sample counted by the
client, and one deposit round checked on the server."""

import pytest
from django.test.utils import override_settings

from accounts.services import monitor_discover, monitor_sweep
from bench.monitor import (
    BENCH_MANAGER,
    WEBAPI,
    _bench_campaign,
    _build,
    _deposit_round,
    _sample,
    _StandIn,
)
from gateways.loading import reset_gateways
from gateways.mt5 import get_mt5_gateway

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_webapi_bench_round_through_the_stand_in_process(settings):
    settings.MONITOR_BATCH_SIZE = 100
    _build(300)
    monitor_discover()
    with _StandIn() as standin:
        assert standin.url.startswith("http://127.0.0.1:")
        overrides = {
            "MT5_GATEWAY": WEBAPI,
            "MT5_WEBAPI_URL": standin.url,
            "MT5_MANAGER_LOGIN": BENCH_MANAGER[0],
            "MT5_MANAGER_PASSWORD": BENCH_MANAGER[1],
            "MT5_WEBAPI_BATCH_SIZE": 100,
        }
        with override_settings(**overrides):
            reset_gateways()
            monitor_sweep(batch_size=100, dispatch=False)
            # Ten sweeps in the sample: the stand-in's CPU is read in clock ticks (10 ms), more
            # than one quiet sweep of 300 accounts costs it.
            quiet = _sample(
                lambda: [monitor_sweep(batch_size=100, dispatch=False) for _ in range(10)],
                get_mt5_gateway(),
                standin,
            )
            _bench_campaign()
            deposits = _deposit_round(7, 100)
            reset_gateways()

    # One user/account/get_batch per batch of 100 (threads may have opened a session too).
    assert quiet["by_path"]["/api/user/account/get_batch"] == 3 * 10
    assert quiet["received"] > 10 * 100_000 and quiet["server_cpu"] > 0
    assert (deposits["deposits"], deposits["handled"], deposits["credited"]) == (3, 3, 3)
    assert (deposits["twice"], deposits["leverage"]) == (0, 3)
    assert deposits["last_credit"] >= 0
