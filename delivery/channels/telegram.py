"""Telegram: a worker sends the link with the Bot API's `sendMessage` to the chat in `contact`.

A chat id or an @channel (bots cannot start a chat with a @user: the gateway refuses that,
permanently). Link previews are off and the message is protected (no forwarding, no saving).
"""

import re

from django.template.loader import render_to_string
from django.views.decorators.debug import sensitive_variables

from delivery.channels import Channel, channel_register, link_context
from delivery.errors import InvalidDeliveryError
from delivery.models import Delivery
from gateways.telegram import get_telegram_gateway

TELEGRAM_CHAT = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")


def contact_check(contact: str) -> str:
    if not TELEGRAM_CHAT.match(contact):
        raise InvalidDeliveryError(
            'Telegram delivery needs a chat id (e.g. "123456789") or "@channelname".',
            code="invalid_contact",
        )
    return contact


@sensitive_variables()
def send(delivery: Delivery, link: str) -> None:
    text = render_to_string("delivery/telegram.txt", link_context(delivery, link)).strip()
    get_telegram_gateway().send_message(
        chat_id=delivery.contact, text=text, disable_link_preview=True, protect_content=True
    )


CHANNEL = channel_register(
    Channel(
        method=Delivery.Method.TELEGRAM,
        hands_link_to_caller=False,
        contact_check=contact_check,
        send=send,
    )
)
