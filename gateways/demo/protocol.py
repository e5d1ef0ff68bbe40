"""The interface of the demo provisioning server (the broker's MT5 demo server)."""

from decimal import Decimal
from typing import Protocol

from .types import DemoAccount, DemoAccountStatus


class DemoGateway(Protocol):
    """Creates and manages MT5 demo accounts.

    Errors: `TransientGatewayError` (worth retrying), `PermanentGatewayError` with `code`
    "limit_reached", "bad_request" or "account_not_found".
    """

    def ping(self) -> None:
        """Raise a `GatewayError` unless the server answers."""

    def create_demo_account(
        self,
        *,
        idempotency_id: str,
        name: str,
        balance: Decimal,
        leverage: int,
        currency: str,
        group: str = "demo\\standard",
    ) -> DemoAccount:
        """Create a demo account; the same `idempotency_id` again returns the same account."""

    def check_account(self, login: int) -> DemoAccountStatus:
        """Report on one account; an unknown login gives `exists=False`, not an error."""

    def change_password(self, login: int, password: str) -> None:
        """Set the account's master password."""

    def disable_account(self, login: int) -> None:
        """Disable the account (it can no longer log in); doing it twice is harmless."""
