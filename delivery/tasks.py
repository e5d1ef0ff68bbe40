"""Thin Celery tasks of the delivery app: an id in, one service call, a status out.

The channel tasks retry only on a gateway's transient error (backoff with jitter, capped);
when they give up, or on any other error, `on_failure` marks the delivery failed.
"""

from celery import Task, shared_task
from django.conf import settings

from delivery.services import deliveries_expire_due, delivery_send, delivery_send_failed
from gateways.errors import TransientGatewayError


class ChannelTask(Task):
    autoretry_for = (TransientGatewayError,)
    retry_backoff = 5  # seconds, doubling: 5, 10, 20, ... with full jitter
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = settings.DELIVERY_SEND_MAX_RETRIES
    soft_time_limit = 30
    time_limit = 45
    acks_late = True

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        delivery_id = kwargs.get("delivery_id", args[0] if args else None)
        if delivery_id is not None:
            delivery_send_failed(delivery_id=delivery_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(base=ChannelTask, name="delivery.send_telegram")
def send_telegram(delivery_id: int) -> str:
    """Send a delivery's link by Telegram; return its status."""
    return delivery_send(delivery_id=delivery_id)


@shared_task(base=ChannelTask, name="delivery.send_email")
def send_email(delivery_id: int) -> str:
    """Send a delivery's link by email; return its status."""
    return delivery_send(delivery_id=delivery_id)


@shared_task(name="delivery.expire_due", soft_time_limit=50, time_limit=58)
def expire_due() -> int:
    """Expire live links past their lifetime and wipe their ciphertext (every minute)."""
    return deliveries_expire_due()


SEND_TASKS = {"telegram": send_telegram, "email": send_email}
