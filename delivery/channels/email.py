"""Email: a worker sends the link through Django's email backend to the address in `contact`.

SMTP errors are translated into the gateways' meaning: 4xx and connection trouble are
transient (retried), 5xx permanent (the delivery fails at once).
"""

import smtplib

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.template.loader import render_to_string
from django.views.decorators.debug import sensitive_variables

from delivery.channels import Channel, channel_register, link_context
from delivery.errors import InvalidDeliveryError
from delivery.models import Delivery
from gateways.errors import GatewayError, PermanentGatewayError, TransientGatewayError


def contact_check(contact: str) -> str:
    try:
        validate_email(contact)
    except ValidationError:
        raise InvalidDeliveryError(
            "Email delivery needs a valid email address as contact.", code="invalid_contact"
        ) from None
    return contact


@sensitive_variables()
def send(delivery: Delivery, link: str) -> None:
    context = link_context(delivery, link)
    message = EmailMultiAlternatives(
        subject="Your credentials: a one-time link",
        body=render_to_string("delivery/email.txt", context),
        to=[delivery.contact],
    )
    message.attach_alternative(render_to_string("delivery/email.html", context), "text/html")
    try:
        message.send()
    except Exception as exc:
        raise email_error(exc) from None


def email_error(exc: Exception) -> GatewayError:
    """An SMTP failure as a gateway error: transient (worth a retry) or permanent."""
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


CHANNEL = channel_register(
    Channel(
        method=Delivery.Method.EMAIL,
        hands_link_to_caller=False,
        contact_check=contact_check,
        send=send,
    )
)
