import threading

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


def test_a_refill_provisions_one_batch_when_under_the_minimum(pool_config):
    pool_config(min_available=3, target_buffer=10, provision_batch_size=4, max_pool_size=100)

    result = pool_refill()

    assert result.ran and result.queued == 4 and result.provisioned == 4
    assert result.below_target
    assert available() == 4
    account = DemoAccount.objects.filter(status="available").first()
    assert account.login and account.password and account.server
    assert str(account.balance) == "50000.00" and account.leverage == 100


def test_a_refill_does_nothing_at_or_above_the_minimum(pool_config, fill):
    pool_config(min_available=3, target_buffer=10, provision_batch_size=4)
    fill(3)

    result = pool_refill()

    assert result.queued == 0
    assert available() == 3


def test_follow_up_refills_top_up_to_the_target_and_stop_there(pool_config):
    pool_config(min_available=3, target_buffer=10, provision_batch_size=4)

    runs = [pool_refill()]
    while runs[-1].below_target:
        runs.append(pool_refill(topping_up=True))

    assert [r.queued for r in runs] == [4, 4, 2]
    assert available() == 10


def test_a_refill_never_passes_the_max_pool_size(pool_config, fill):
    pool_config(min_available=30, target_buffer=40, provision_batch_size=50, max_pool_size=12)
    fill(5)
    DemoAccount.objects.filter(status="available").update(status="assigned")

    result = pool_refill()

    assert result.queued == 7
    assert DemoAccount.objects.filter(status__in=DemoAccount.LIVE).count() == 12
    assert pool_refill(topping_up=True).queued == 0


def test_a_refill_counts_accounts_already_being_provisioned(pool_config):
    pool_config(min_available=3, target_buffer=6, provision_batch_size=10)
    provisioning_enqueue(count=4)  # in flight, not worked yet

    result = pool_refill(topping_up=True)

    assert result.queued == 2
    assert available() == 6


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

    pool_config(min_available=10, target_buffer=20, provision_batch_size=5)
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
    assert results[0].queued == 5
    assert DemoAccount.objects.count() == 5
