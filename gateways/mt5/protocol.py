"""The MT5 manager gateway: what the product may ask of an MT5 server.

Errors: `TransientGatewayError` (try again later), `PermanentGatewayError` with a `code`
(`account_not_found`, `insufficient_balance`, `insufficient_credit`, `invalid_amount`,
`invalid_comment`, `invalid_leverage`, `invalid_password`), and `UnknownOutcomeError` when a
write was sent but no answer came back: look the deal up by its comment before retrying.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from .types import AccountState, MT5Account, MT5Deal, MT5Position


@runtime_checkable
class MT5ManagerGateway(Protocol):
    """A manager connection to one MT5 server: simulated, or MetaQuotes' Manager Web API
    (`gateways.mt5.webapi`). Kept thin so an adapter for a vendor's manager API can be added."""

    def ping(self) -> None:
        """Return if the server answers; raise `TransientGatewayError` if it does not."""

    def get_accounts(self, logins: Iterable[int]) -> dict[int, MT5Account]:
        """Return the accounts of `logins` in one call; unknown logins are simply absent."""

    def get_states(self, logins: Iterable[int]) -> dict[int, AccountState]:
        """Return balance, credit, equity and leverage of `logins` in one call (money as
        cents); unknown logins are absent. The monitor's per-second call: keep it lean."""

    def list_logins(self) -> list[int]:
        """Return every login on the server, ascending."""

    def list_groups(self) -> list[str]:
        """Return the server's group names, sorted."""

    def list_countries(self) -> list[str]:
        """Return the countries the server's accounts are in, sorted."""

    def get_deals(
        self, *, cursors: Mapping[int, int], since: datetime | None = None
    ) -> list[MT5Deal]:
        """Return, in one call, each login's deals with ticket > cursors[login] (and time >=
        `since`), ordered by ticket."""

    def get_positions(self, logins: Iterable[int]) -> list[MT5Position]:
        """Return the open positions of `logins`, ordered by ticket."""

    def close_positions(self, login: int, *, comment: str) -> list[int]:
        """Close every open position of `login`; return the closing deals' tickets."""

    def post_balance(self, login: int, amount: Decimal, *, comment: str) -> int:
        """Deposit (positive) or withdraw (negative) `amount`; return the BALANCE deal ticket."""

    def post_credit(self, login: int, amount: Decimal, *, comment: str) -> int:
        """Add (positive) or remove (negative) credit; return the CREDIT deal ticket."""

    def set_leverage(self, login: int, leverage: int) -> None:
        """Set the account's leverage (1:`leverage`)."""

    def create_account(
        self,
        *,
        name: str,
        group: str,
        country: str,
        leverage: int,
        password: str,
        lead_source: str = "",
        currency: str = "USD",
    ) -> MT5Account:
        """Create an account with a zero balance; the server picks the login."""

    def change_password(self, login: int, password: str) -> None:
        """Replace the account's main password."""

    def set_enabled(self, login: int, enabled: bool) -> None:
        """Allow or forbid the account to connect and trade."""

    def find_deal_by_comment(self, login: int, comment: str) -> MT5Deal | None:
        """Return the latest deal of `login` carrying exactly `comment`, or None."""
