"""Thin Celery tasks of the delivery app: an id in, one service call, a status out.

Every channel that sends (`delivery.channels`) has a task `delivery.send_<method>`, made here
from its registration: the retry policy is `ChannelTask`'s, the rest its `task_options`. The
channel tasks retry only on a gateway's transient error (backoff with jitter, capped); when
they give up, or on any other error, `on_failure` marks the delivery failed.
"""

from celery import Task, shared_task
from django.conf import settings

from delivery.channels import Channel, channel_get, channels_all
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


def _send_task(channel: Channel) -> Task:
    def send(delivery_id: int) -> str:
        return delivery_send(delivery_id=delivery_id)

    send.__name__ = send.__qualname__ = f"send_{channel.method}"
    send.__doc__ = f"Send a delivery's link by {channel.method}; return its status."
    return shared_task(base=ChannelTask, name=channel.task_name, **channel.task_options)(send)


SEND_TASKS: dict[str, Task] = {
    channel.method: _send_task(channel)
    for channel in channels_all()
    if not channel.hands_link_to_caller
}


def send_task_for(method: str) -> Task:
    """The send task of `method`'s channel (made now for a channel registered since import)."""
    channel = channel_get(method)
    if channel.hands_link_to_caller:
        raise ValueError(f"channel {method!r} hands its link to the caller: nothing to send")
    if method not in SEND_TASKS:
        SEND_TASKS[method] = _send_task(channel)
    return SEND_TASKS[method]


# The built-in ones by name, for operators' shells and the tests.
send_telegram = SEND_TASKS["telegram"]
send_email = SEND_TASKS["email"]


@shared_task(name="delivery.expire_due", soft_time_limit=50, time_limit=58)
def expire_due() -> int:
    """Expire live links past their lifetime and wipe their ciphertext (every minute)."""
    return deliveries_expire_due()
