"""Sending a pending delivery by its channel (`delivery.channels`), from its worker task
(`delivery.tasks`); the channels that hand the link to the caller have nothing to send.

A send is never inside a database transaction. Errors keep the gateways' meaning: a
`TransientGatewayError` is raised again for the task to retry (with backoff), a
`PermanentGatewayError` fails the delivery at once.
"""

import logging

from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from delivery.channels import channel_get
from delivery.models import Delivery
from gateways.errors import PermanentGatewayError, TransientGatewayError

logger = logging.getLogger("delivery")

ERROR_MAX = 500


@sensitive_variables()
def delivery_send(*, delivery_id: int) -> str:
    """Send a pending delivery's link by its channel; return the status it is left in.

    Anything but a pending delivery with its link waiting is skipped (already sent, revealed,
    superseded, expired): a task that runs twice sends once.
    """
    delivery = Delivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        return "missing"
    if delivery.status != Delivery.Status.PENDING:
        return delivery.status
    send = channel_get(delivery.method).send
    if send is None:  # handed to the caller: nothing to send
        return delivery.status
    link = delivery.pending_link
    if link is None:
        return delivery.status
    Delivery.objects.filter(pk=delivery_id).update(send_attempts=F("send_attempts") + 1)
    try:
        send(delivery, link)
    except PermanentGatewayError as exc:
        delivery_send_failed(delivery_id=delivery_id, error=str(exc))
        return Delivery.Status.FAILED
    except TransientGatewayError as exc:
        Delivery.objects.filter(pk=delivery_id).update(last_error=_short(exc))
        logger.warning(
            "delivery %s: %s send failed, to retry: %s", delivery_id, delivery.method, exc
        )
        raise
    now = timezone.now()
    sent = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.SENT, sent_at=now, pending_link=None, last_error=""
    )
    if not sent:  # revealed or superseded while the message was on its way
        Delivery.objects.filter(pk=delivery_id).update(sent_at=now, pending_link=None)
    logger.info("delivery %s sent by %s", delivery_id, delivery.method)
    return Delivery.Status.SENT


def delivery_send_failed(*, delivery_id: int, error: str) -> bool:
    """A send that will not happen (refused, or out of retries): failed, ciphertext wiped."""
    failed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED, last_error=_short(error), payload=None, pending_link=None
    )
    if failed:
        logger.warning("delivery %s failed: %s", delivery_id, _short(error))
    return bool(failed)


def _short(error) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"
