"""The delivery channels, a registry: one module per channel in this package.

Each module builds one `Channel` and passes it to `channel_register`; importing this package
imports every module in it (not those starting with `_`), so a new channel is one new module
(and its `Delivery.Method` value: see docs/delivery.md, "A new channel"). Everything that
differs by channel is asked of the channel, never decided by comparing method strings:

- `hands_link_to_caller`: the link is in `delivery_create`'s answer and the delivery is `sent`
  at once (api, qr), or a worker carries it to the contact and the caller never sees it
  (telegram, email);
- `contact_check`: the contact the channel needs, stripped, or `InvalidDeliveryError`;
- `send`: how a worker carries the link (only for channels that do not hand it to the caller),
  raising the gateways' `TransientGatewayError` (retried) or `PermanentGatewayError` (failed);
- `task_options`: Celery options of its send task `delivery.send_<method>` (a queue, time
  limits, ...) over what every channel task shares (`delivery.tasks.ChannelTask`: retries
  of transient errors only, with backoff and jitter, and 30 s / 45 s time limits);
- `extras`: what the caller gets with the link besides it (qr: the QR code).

Looking up a method nobody registered raises `UnknownChannelError` (400 `invalid_method`).
"""

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core import checks

from delivery.errors import UnknownChannelError
from delivery.models import Delivery

ContactCheck = Callable[[str], str]
Send = Callable[[Delivery, str], None]


@dataclass(frozen=True)
class Channel:
    """One way of handing a one-time link over; see the module's docstring for each field."""

    method: str
    hands_link_to_caller: bool
    contact_check: ContactCheck
    send: Send | None = None
    task_options: Mapping[str, Any] = field(default_factory=dict)
    extras: Callable[[str], dict[str, Any]] | None = None

    def __post_init__(self):
        # Exactly one of the two ways: a link nobody sends, or one sent and shown too, is a bug.
        if self.hands_link_to_caller == (self.send is not None):
            raise ValueError(
                f"channel {self.method!r}: a channel either hands the link to the caller or "
                "has a send, not both and not neither"
            )

    @property
    def task_name(self) -> str:
        return f"delivery.send_{self.method}"

    def extras_for(self, link: str) -> dict[str, Any]:
        return self.extras(link) if self.extras is not None else {}


_REGISTRY: dict[str, Channel] = {}


def channel_register(channel: Channel) -> Channel:
    """Add a channel to the registry; a second channel for the same method raises."""
    if channel.method in _REGISTRY:
        raise ValueError(f"delivery channel {channel.method!r} is registered already")
    _REGISTRY[channel.method] = channel
    return channel


def channel_unregister(method: str) -> None:
    """Remove a channel (tests that register a channel of their own clean up with it)."""
    _REGISTRY.pop(method, None)


def channel_get(method: str) -> Channel:
    """The channel registered for `method`; `UnknownChannelError` for any other."""
    try:
        return _REGISTRY[method]
    except (KeyError, TypeError):  # TypeError: an unhashable method from parsed input
        raise UnknownChannelError(
            f"Unknown delivery method {method!r}; one of {', '.join(_REGISTRY)}."
        ) from None


def channels_all() -> list[Channel]:
    """Every registered channel, in the order they were registered."""
    return list(_REGISTRY.values())


def link_context(delivery: Delivery, link: str) -> dict[str, Any]:
    """What a channel's message template gets: the link, its expiry and lifetime."""
    return {
        "link": link,
        "expires_at": delivery.expires_at,
        "ttl_minutes": settings.DELIVERY_LINK_TTL_MINUTES,
    }


def check_channels(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """delivery.E003: the methods a Delivery may store and the registered channels agree."""
    stored, registered = set(Delivery.Method.values), set(_REGISTRY)
    errors: list[checks.CheckMessage] = []
    for method in sorted(stored - registered):
        errors.append(
            checks.Error(
                f"Delivery.Method {method!r} has no channel in delivery/channels/",
                hint="Add a module there that calls channel_register (docs/delivery.md).",
                id="delivery.E003",
            )
        )
    for method in sorted(registered - stored):
        errors.append(
            checks.Error(
                f"delivery channel {method!r} is not a Delivery.Method value",
                hint="Add it to Delivery.Method and make the migration (docs/delivery.md).",
                id="delivery.E003",
            )
        )
    return errors


def _discover() -> None:
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_discover()
