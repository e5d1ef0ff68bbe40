"""Demo provisioning: MT5 demo accounts created on demand on the broker's MT5 demo server."""

from gateways.loading import load_gateway

from .protocol import DemoGateway
from .types import DemoAccount, DemoAccountStatus

__all__ = ["DemoAccount", "DemoAccountStatus", "DemoGateway", "get_demo_gateway"]


def get_demo_gateway() -> DemoGateway:
    """Return the demo provisioning gateway named in `settings.DEMO_GATEWAY`."""
    return load_gateway("DEMO_GATEWAY")
