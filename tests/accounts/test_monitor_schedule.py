"""Beat's sweep: fanned out in batches, harmless when it overlaps, backing off in an outage."""

from datetime import timedelta
from decimal import Decimal

import pytest
from celery import current_app
from django.core.cache import cache
from django.utils import timezone

from accounts.models import AccountEvent, MonitoredAccount
from accounts.selectors import monitor_status
from accounts.services import monitor_discover, monitor_test_deal
from accounts.services.monitor import SWEEP_LOCK_KEY, monitor_sweep_schedule
from accounts.tasks import monitor_sweep_task
from gateways.loading import reset_gateways
from gateways.models import SimulatorKnobs
from gateways.mt5.simulated import seed_demo_accounts


@pytest.fixture(autouse=True)
def simulated(settings, db):
    settings.MT5_GATEWAY = "gateways.mt5.simulated.SimulatedMT5Gateway"
    reset_gateways()
    seed_demo_accounts()
    monitor_discover()
    yield
    reset_gateways()


@pytest.fixture
def eager():
    """Batch tasks run in this process as they are sent, as a worker would run them."""
    before = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = before


def test_the_scheduled_sweep_fans_out_one_task_per_batch_and_records_the_sweep(settings, eager):
    settings.MONITOR_BATCH_SIZE = 3
    deal_id = monitor_test_deal(login=10007, amount=Decimal("50.00"))

    assert monitor_sweep_schedule() == "fanned-out:4"  # 10 accounts, 3 a batch

    assert AccountEvent.objects.get(ticket=deal_id).status == AccountEvent.Status.DONE
    status = monitor_status()
    assert status["sweeps_total"] == 1
    assert status["last_sweep_at"] is not None
    assert cache.get(SWEEP_LOCK_KEY) is None  # the last batch freed the schedule


def test_a_scheduled_sweep_is_skipped_while_the_previous_one_still_runs(settings):
    cache.set(SWEEP_LOCK_KEY, "another sweep", timeout=30)

    assert monitor_sweep_schedule() == "busy"
    assert monitor_status()["sweeps_total"] == 0


def test_a_gateway_outage_backs_the_schedule_off_and_it_resumes_by_itself(settings, time_machine):
    settings.MONITOR_FAN_OUT = False
    knobs = SimulatorKnobs.objects.create(server="mt5", error_rate=Decimal("1"))

    assert monitor_sweep_task() == "unavailable"  # every batch failed: no account blamed
    assert monitor_sweep_task() == "backing-off"
    assert not MonitoredAccount.objects.filter(consecutive_errors__gt=0).exists()

    knobs.error_rate = 0
    knobs.save()
    time_machine.move_to(timezone.now() + timedelta(seconds=settings.MONITOR_OUTAGE_MAX_SECONDS))
    assert monitor_sweep_task() == "swept"
    assert monitor_sweep_task() == "swept"  # healthy again: no backoff left
    assert not MonitoredAccount.objects.filter(status="paused").exists()


def test_a_sweep_task_never_raises_even_when_the_sweep_breaks(monkeypatch):
    import accounts.tasks as tasks

    def broken():
        raise RuntimeError("database went away")

    monkeypatch.setattr(tasks, "monitor_sweep_schedule", broken)

    assert monitor_sweep_task() == "failed"


def test_metrics_show_the_monitored_accounts_the_paused_ones_and_the_last_sweep(client):
    from accounts.services import monitor_sweep

    MonitoredAccount.objects.filter(login=10002).update(status="paused")
    monitor_sweep()

    text = client.get("/metrics").content.decode()

    assert 'brokerdesk_monitor_accounts{status="active"} 9.0' in text
    assert 'brokerdesk_monitor_accounts{status="paused"} 1.0' in text
    assert "brokerdesk_monitor_events_pending 0.0" in text
    assert "brokerdesk_monitor_last_sweep_timestamp_seconds 0.0" not in text
