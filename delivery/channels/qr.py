"""QR code: like api, the link is returned to the caller, with its QR code as SVG and PNG."""

from delivery.channels import Channel, channel_register
from delivery.models import Delivery
from delivery.qr import qr_png, qr_svg


def contact_check(contact: str) -> str:
    return contact


def extras(link: str) -> dict:
    return {"qr_svg": qr_svg(link), "qr_png": qr_png(link)}


CHANNEL = channel_register(
    Channel(
        method=Delivery.Method.QR,
        hands_link_to_caller=True,
        contact_check=contact_check,
        extras=extras,
    )
)
