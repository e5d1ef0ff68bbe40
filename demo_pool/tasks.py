"""Thin Celery tasks of the demo pool: one service call each, a small summary out."""

from dataclasses import asdict

from celery import shared_task

from demo_pool import services


@shared_task(name="demo_pool.refill", soft_time_limit=240, time_limit=300)
def refill() -> dict:
    """One refill run (beat: every minute; also after an assignment under the target).

    A run tops up batch after batch; stopped for time while under the target, it queues a
    follow-up run.
    """
    result = services.pool_refill()
    if result.below_target:
        refill.apply_async()
    return asdict(result)


@shared_task(name="demo_pool.provision", soft_time_limit=240, time_limit=300)
def provision() -> dict:
    """Work the provisioning queue now (after a replenish); return the counts."""
    return services.provisioning_process()


@shared_task(name="demo_pool.health_check", soft_time_limit=120, time_limit=150)
def health_check() -> dict:
    """Check the stalest accounts; retire and replace the unhealthy available ones."""
    return services.pool_health_check()


@shared_task(name="demo_pool.expire_due", soft_time_limit=120, time_limit=150)
def expire_due() -> dict:
    """Disable and expire press passes past their expiry."""
    return services.press_passes_expire_due()


@shared_task(name="demo_pool.cleanup", soft_time_limit=240, time_limit=300)
def cleanup() -> dict:
    """Clean up failed, retired and expired accounts (at the configured interval)."""
    return services.pool_cleanup()


@shared_task(name="demo_pool.fulfil", soft_time_limit=120, time_limit=150)
def fulfil() -> int:
    """Hand the available accounts to waiting activations (after a demo-server fault, and
    every 10 s from beat); return how many were assigned."""
    return services.activation_requests_fulfil()
