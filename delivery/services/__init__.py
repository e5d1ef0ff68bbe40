"""Every write of the delivery app. Other apps import from here:

from delivery.services import delivery_create, delivery_resend
"""

from .channels import delivery_send, delivery_send_failed
from .deliveries import (
    DeliveryResult,
    LinkState,
    Revealed,
    deliveries_expire_due,
    delivery_contact_check,
    delivery_create,
    delivery_resend,
    delivery_result,
    delivery_reveal,
    delivery_view,
    link_for,
    token_hash,
)
from .rotation import FieldRotation, RotationReport, encrypted_fields, keys_rotate

__all__ = [
    "DeliveryResult",
    "FieldRotation",
    "LinkState",
    "Revealed",
    "RotationReport",
    "deliveries_expire_due",
    "delivery_contact_check",
    "delivery_create",
    "delivery_resend",
    "delivery_result",
    "delivery_reveal",
    "delivery_send",
    "delivery_send_failed",
    "delivery_view",
    "encrypted_fields",
    "keys_rotate",
    "link_for",
    "token_hash",
]
