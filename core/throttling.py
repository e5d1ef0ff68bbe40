"""DRF's throttles, keyed by the client address of `core.net` instead of their own guess.

DRF's `get_ident` reads `X-Forwarded-For` whenever `NUM_PROXIES` is unset, so a client that
writes a new address into that header with each request is never throttled.
"""

from rest_framework import throttling

from core.net import client_ip


class ClientAddressMixin:
    def get_ident(self, request) -> str:
        return client_ip(request) or "unknown"


class ScopedRateThrottle(ClientAddressMixin, throttling.ScopedRateThrottle):
    """`throttle_scope` on a view, counted per client address (or per user when logged in)."""
