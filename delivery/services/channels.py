"""The channels that carry a link: Telegram and email are sent by a worker (`delivery.tasks`);
api and qr hand the link to the caller in `delivery_create`'s answer.

A send is never inside a database transaction. Errors keep the gateways' meaning: a
`TransientGatewayError` is raised again for the task to retry (with backoff), a
`PermanentGatewayError` fails the delivery at once. SMTP errors are translated the same way
(4xx and connection trouble: transient; 5xx: permanent).
"""

import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from delivery.models import Delivery
from gateways.errors import GatewayError, PermanentGatewayError, TransientGatewayError
from gateways.telegram import get_telegram_gateway

logger = logging.getLogger("delivery")

Status = Delivery.Status
Method = Delivery.Method
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
    if delivery.status != Status.PENDING or delivery.method not in CHANNELS:
        return delivery.status
    link = delivery.pending_link
    if link is None:
        return delivery.status
    Delivery.objects.filter(pk=delivery_id).update(send_attempts=F("send_attempts") + 1)
    try:
        CHANNELS[delivery.method](delivery, link)
    except PermanentGatewayError as exc:
        delivery_send_failed(delivery_id=delivery_id, error=str(exc))
        return Status.FAILED
    except TransientGatewayError as exc:
        Delivery.objects.filter(pk=delivery_id).update(last_error=_short(exc))
        logger.warning(
            "delivery %s: %s send failed, to retry: %s", delivery_id, delivery.method, exc
        )
        raise
    now = timezone.now()
    sent = Delivery.objects.filter(pk=delivery_id, status=Status.PENDING).update(
        status=Status.SENT, sent_at=now, pending_link=None, last_error=""
    )
    if not sent:  # revealed or superseded while the message was on its way
        Delivery.objects.filter(pk=delivery_id).update(sent_at=now, pending_link=None)
    logger.info("delivery %s sent by %s", delivery_id, delivery.method)
    return Status.SENT


def delivery_send_failed(*, delivery_id: int, error: str) -> bool:
    """A send that will not happen (refused, or out of retries): failed, ciphertext wiped."""
    failed = Delivery.objects.filter(pk=delivery_id, status=Status.PENDING).update(
        status=Status.FAILED, last_error=_short(error), payload=None, pending_link=None
    )
    if failed:
        logger.warning("delivery %s failed: %s", delivery_id, _short(error))
    return bool(failed)


def _short(error) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def _context(delivery: Delivery, link: str) -> dict:
    return {
        "link": link,
        "expires_at": delivery.expires_at,
        "ttl_minutes": settings.DELIVERY_LINK_TTL_MINUTES,
    }


@sensitive_variables()
def _send_telegram(delivery: Delivery, link: str) -> None:
    text = render_to_string("delivery/telegram.txt", _context(delivery, link)).strip()
    get_telegram_gateway().send_message(
        chat_id=delivery.contact, text=text, disable_link_preview=True, protect_content=True
    )


@sensitive_variables()
def _send_email(delivery: Delivery, link: str) -> None:
    context = _context(delivery, link)
    message = EmailMultiAlternatives(
        subject="Your credentials: a one-time link",
        body=render_to_string("delivery/email.txt", context),
        to=[delivery.contact],
    )
    message.attach_alternative(render_to_string("delivery/email.html", context), "text/html")
    try:
        message.send()
    except Exception as exc:
        raise _email_error(exc) from None


def _email_error(exc: Exception) -> GatewayError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        permanent = any(code >= 500 for code in codes)
        kind = PermanentGatewayError if permanent else TransientGatewayError
        return kind(f"recipient refused ({', '.join(map(str, codes))})", gateway="email")
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return TransientGatewayError(f"SMTP: {type(exc).__name__}", gateway="email")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = PermanentGatewayError if exc.smtp_code >= 500 else TransientGatewayError
        return kind(f"SMTP {exc.smtp_code}", gateway="email", status=exc.smtp_code)
    if isinstance(exc, OSError):  # refused, unreachable, timed out
        return TransientGatewayError(f"SMTP: {type(exc).__name__}: {exc}", gateway="email")
    return PermanentGatewayError(f"email: {type(exc).__name__}", gateway="email")


CHANNELS = {Method.TELEGRAM: _send_telegram, Method.EMAIL: _send_email}
