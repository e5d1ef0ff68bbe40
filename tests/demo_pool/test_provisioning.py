import threading
from unittest import mock

import pytest
import time_machine
from django.db import connection

from demo_pool.models import DemoAccount, ProvisioningRequest
from demo_pool.services import (
    pool_refill,
    pool_replenish,
    provisioning_enqueue,
    provisioning_process,
)
from gateways.errors import PermanentGatewayError, TransientGatewayError
from gateways.models import SimulatedDemoAccount

pytestmark = pytest.mark.django_db


def available():
    return DemoAccount.objects.filter(status="available").count()


def test_the_configuration_has_the_seed_defaults(pool_config):
    config = pool_config()
    assert (config.min_available, config.max_pool_size, config.target_buffer) == (25, 100, 40)
    assert config.provision_batch_size == 5
    assert config.health_check_interval_minutes == 15
    assert config.cleanup_interval_hours == 4
    assert str(config.initial_balance) == "50000.00"
    assert (config.currency, config.leverage) == ("USD", 100)
    assert (config.account_expiry_days, config.press_pass_days) == (30, 7)


def test_a_refill_tops_the_pool_up_to_the_target_in_batches(pool_config, demo_gateway):
    pool_config(min_available=3, target_buffer=10, provision_batch_size=4, max_pool_size=100)

    result = pool_refill()

    assert result.ran and (result.queued, result.batches, result.provisioned) == (10, 3, 10)
    assert not result.below_target
    assert available() == 10
    assert demo_gateway.calls["create_demo_account"] == 10
    account = DemoAccount.objects.filter(status="available").first()
    assert account.login and account.password and account.server
    assert str(account.balance) == "50000.00" and account.leverage == 100


def test_a_refill_starts_under_the_target_even_above_the_minimum(pool_config, fill):
    # Waiting for the minimum would leave no time to provision before the pool runs under it.
    pool_config(min_available=3, target_buffer=10, provision_batch_size=4)
    fill(5)

    result = pool_refill()

    assert (result.queued, result.batches) == (5, 2)
    assert available() == 10


def test_a_refill_does_nothing_at_the_target(pool_config, fill, demo_gateway):
    pool_config(min_available=3, target_buffer=10, provision_batch_size=4)
    fill(10)
    created = demo_gateway.calls["create_demo_account"]

    result = pool_refill()

    assert result.ran and result.queued == 0 and result.batches == 0
    assert demo_gateway.calls["create_demo_account"] == created
    assert available() == 10


def test_a_refill_never_passes_the_max_pool_size(pool_config, fill):
    pool_config(min_available=30, target_buffer=40, provision_batch_size=50, max_pool_size=12)
    fill(5)

    result = pool_refill()

    assert result.queued == 7
    assert DemoAccount.objects.filter(status__in=DemoAccount.POOL).count() == 12
    assert pool_refill().queued == 0


def test_assigned_accounts_do_not_count_against_the_max(pool_config):
    from demo_pool.services import press_pass_activate

    # The max caps the accounts kept warm; people's press passes are not the pool.
    pool_config(min_available=0, target_buffer=5, provision_batch_size=5, max_pool_size=10)
    for round_ in range(4):
        assert pool_refill().queued == 5
        for n in range(5):
            press_pass_activate(
                user_id=f"u{round_}-{n}", real_name="Jane Doe", delivery_method="api"
            )

    assert DemoAccount.objects.filter(status="assigned").count() == 20
    assert pool_refill().queued == 5
    assert available() == 5


def test_a_refill_counts_accounts_already_being_provisioned(pool_config):
    pool_config(min_available=3, target_buffer=6, provision_batch_size=10)
    provisioning_enqueue(count=4)  # in flight, not worked yet

    result = pool_refill()

    assert result.queued == 2
    assert available() == 6


def test_a_run_out_of_time_hands_over_to_a_follow_up_run(pool_config, settings):
    from demo_pool import tasks

    settings.DEMO_POOL_REFILL_RUN_SECONDS = 0  # every run stops after its first batch
    pool_config(min_available=3, target_buffer=10, provision_batch_size=4)

    with mock.patch.object(tasks.refill, "apply_async") as follow_up:
        summary = tasks.refill()

    assert summary["queued"] == 4 and summary["below_target"]
    follow_up.assert_called_once()
    runs = [pool_refill(), pool_refill()]
    assert [r.queued for r in runs] == [4, 2]
    assert not runs[-1].below_target
    assert available() == 10


def test_a_refill_stops_when_the_server_refuses_instead_of_queueing_more(pool_config, demo_gateway):
    pool_config(min_available=3, target_buffer=10, provision_batch_size=4)
    demo_gateway.fail_next("create_demo_account", PermanentGatewayError, times=100)

    result = pool_refill()

    assert (result.queued, result.failed, result.below_target) == (4, 4, False)
    assert DemoAccount.objects.filter(status="failed").count() == 4


def test_a_provisioning_retry_after_a_timeout_does_not_create_a_second_account(
    pool_config, demo_gateway
):
    pool_config()
    demo_gateway.fail_next("create_demo_account", TransientGatewayError, after_write=True)
    with time_machine.travel("2030-01-01 12:00Z", tick=False) as clock:
        provisioning_enqueue(count=1)
        first = provisioning_process()
        request = ProvisioningRequest.objects.get()
        assert first["retrying"] == 1 and request.status == "pending"
        assert SimulatedDemoAccount.objects.count() == 1
        assert provisioning_process()["provisioned"] == 0  # not due yet: backoff
        clock.shift(60)
        second = provisioning_process()

    assert second["provisioned"] == 1
    assert SimulatedDemoAccount.objects.count() == 1
    account = DemoAccount.objects.get()
    assert account.status == "available"
    assert account.login == SimulatedDemoAccount.objects.get().login
    request.refresh_from_db()
    assert request.attempts == 2 and request.status == "done"


def test_a_permanent_refusal_fails_the_account_with_its_reason(pool_config, demo_gateway):
    pool_config()
    demo_gateway.fail_next("create_demo_account", PermanentGatewayError)
    provisioning_enqueue(count=1)

    assert provisioning_process()["failed"] == 1

    account = DemoAccount.objects.get()
    assert account.status == "failed" and "injected fault" in account.reason
    assert ProvisioningRequest.objects.get().status == "failed"


def test_transient_errors_give_up_after_the_maximum_attempts(pool_config, demo_gateway, settings):
    settings.DEMO_POOL_PROVISION_MAX_ATTEMPTS = 2
    pool_config()
    demo_gateway.fail_next("create_demo_account", TransientGatewayError, times=5)
    with time_machine.travel("2030-01-01 12:00Z", tick=False) as clock:
        provisioning_enqueue(count=1)
        provisioning_process()
        clock.shift(3600)
        provisioning_process()

    request = ProvisioningRequest.objects.get()
    assert request.status == "failed" and request.error_code == "retries_exhausted"


def test_replenish_queues_within_the_max(pool_config):
    pool_config(max_pool_size=8)

    assert pool_replenish(count=10) == 8
    provisioning_process()
    assert available() == 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_refills_at_once_provision_one_batch(pool_config):
    from gateways.demo import get_demo_gateway

    # One batch is the whole shortfall: the second run must not add one of its own.
    pool_config(min_available=5, target_buffer=5, provision_batch_size=5)
    gateway = get_demo_gateway()
    entered, release = threading.Event(), threading.Event()
    type(gateway).hold = (entered, release)
    results = []

    def first():
        try:
            results.append(pool_refill())
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert entered.wait(timeout=30)  # the first run holds the lock, inside the gateway
    second = pool_refill()
    release.set()
    thread.join(timeout=60)
    type(gateway).hold = None

    assert second.ran is False
    assert (results[0].queued, results[0].batches) == (5, 1)
    assert DemoAccount.objects.count() == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refill_provisions_a_batch_s_accounts_concurrently(pool_config, settings):
    from gateways.demo import get_demo_gateway

    settings.DEMO_POOL_PROVISION_THREADS = 5
    pool_config(min_available=5, target_buffer=10, provision_batch_size=5)
    gateway = get_demo_gateway()
    # Every create waits here until five are in flight: one at a time, it would time out.
    together = threading.Barrier(5, timeout=20)
    create = gateway.create_demo_account

    def create_when_five_are_in_flight(**kwargs):
        together.wait()
        return create(**kwargs)

    with mock.patch.object(gateway, "create_demo_account", create_when_five_are_in_flight):
        result = pool_refill()

    assert (result.queued, result.batches, result.provisioned) == (10, 2, 10)
    assert available() == 10
    assert SimulatedDemoAccount.objects.count() == 10
