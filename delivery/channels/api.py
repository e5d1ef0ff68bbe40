"""API: the link is returned to the caller, who hands it over; the delivery is `sent` at once.

The contact is optional and free text (who the caller will give it to).
"""

from delivery.channels import Channel, channel_register
from delivery.models import Delivery


def contact_check(contact: str) -> str:
    return contact


CHANNEL = channel_register(
    Channel(method=Delivery.Method.API, hands_link_to_caller=True, contact_check=contact_check)
)
