import pytest
import time_machine

from demo_pool.models import DemoAccount, HealthLog, PressPass
from demo_pool.services import (
    pool_cleanup,
    pool_health_check,
    press_pass_activate,
    press_passes_expire_due,
)
from gateways.errors import TransientGatewayError
from gateways.models import SimulatedDemoAccount

pytestmark = pytest.mark.django_db


def server(account):
    return SimulatedDemoAccount.objects.get(pk=account.login - SimulatedDemoAccount.LOGIN_OFFSET)


def test_a_health_check_retires_a_disabled_available_account_and_provisions_a_replacement(
    pool_config, fill
):
    pool_config(min_available=0, target_buffer=0)
    with time_machine.travel("2030-01-01 12:00Z", tick=False) as clock:
        fill(2)
        sick = DemoAccount.objects.order_by("pk").first()
        SimulatedDemoAccount.objects.filter(pk=server(sick).pk).update(enabled=False)

        first = pool_health_check()
        sick.refresh_from_db()
        assert first["failed"] == 1 and sick.status == "available"  # once may be a blip
        clock.shift(16 * 60)
        second = pool_health_check()

    sick.refresh_from_db()
    assert second["retired"] == 1
    assert sick.status == "retired" and "disabled" in sick.reason
    assert DemoAccount.objects.filter(status="available").count() == 2
    assert HealthLog.objects.filter(account=sick, healthy=False).count() == 2


def test_a_health_check_skips_accounts_checked_within_the_interval(pool_config, fill):
    pool_config(min_available=0)
    fill(3)

    assert pool_health_check()["checked"] == 3
    assert pool_health_check()["checked"] == 0


def test_a_gateway_outage_during_the_checks_retires_nothing(pool_config, fill, demo_gateway):
    pool_config(min_available=0)
    with time_machine.travel("2030-01-01 12:00Z", tick=False) as clock:
        fill(1)
        demo_gateway.fail_next("check_account", TransientGatewayError, times=2)
        pool_health_check()
        clock.shift(16 * 60)
        counts = pool_health_check()

    assert counts["errors"] == 1
    assert DemoAccount.objects.get().status == "available"


def test_an_assigned_account_that_fails_is_flagged_for_staff(pool_config, fill):
    pool_config(min_available=0)
    fill(1)
    press_pass = press_pass_activate(user_id="u", real_name="U", delivery_method="api").press_pass
    SimulatedDemoAccount.objects.update(enabled=False)

    assert pool_health_check()["flagged"] == 1

    account = DemoAccount.objects.get(pk=press_pass.account_id)
    assert account.needs_attention and account.status == "assigned"


def test_expiry_disables_a_press_pass_after_seven_days_and_not_before(pool_config, fill):
    pool_config(min_available=0)
    with time_machine.travel("2030-01-01 12:00Z", tick=False) as clock:
        fill(1)
        press_pass = press_pass_activate(
            user_id="u", real_name="U", delivery_method="api"
        ).press_pass
        clock.shift(7 * 86400 - 60)
        assert press_passes_expire_due()["expired"] == 0
        assert server(press_pass.account).enabled
        clock.shift(120)
        assert press_passes_expire_due()["expired"] == 1

    press_pass.refresh_from_db()
    assert press_pass.status == "expired"
    assert DemoAccount.objects.get().status == "expired"
    assert not server(press_pass.account).enabled


def test_cleanup_disables_retired_accounts_and_wipes_their_passwords(pool_config, fill):
    pool_config(min_available=0)
    fill(2)
    DemoAccount.objects.filter(pk=DemoAccount.objects.first().pk).update(status="retired")

    counts = pool_cleanup(force=True)

    retired = DemoAccount.objects.get(status="retired")
    assert counts["cleaned"] == 1
    assert retired.password is None and retired.cleaned_at
    assert not server(retired).enabled
    assert pool_cleanup()["skipped"] == 1  # not again within the interval
    assert PressPass.objects.count() == 0
