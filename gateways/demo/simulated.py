"""The simulated demo provisioning server: state in the database, so every process sees it."""

import hashlib
import hmac
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import BasePasswordHasher, make_password
from django.db import IntegrityError, transaction

from core.money import CENT
from gateways.errors import PermanentGatewayError
from gateways.models import SimulatedDemoAccount
from gateways.simulation import apply_knobs

from .types import DemoAccount, DemoAccountStatus

GATEWAY = "demo"


class SimulatedDemoGateway:
    """Demo provisioning backed by `SimulatedDemoAccount` rows.

    A retried create must hand back the password of the first answer, yet the database keeps
    only a hash: the initial password is derived from SECRET_KEY and the idempotency id, so
    the server can recompute it instead of storing it.
    """

    # The partner's quota of enabled demo accounts; tests lower it to reach the limit.
    max_accounts: int = 10_000
    # How the server hashes passwords: the project's default (PBKDF2); a benchmark of the
    # product, not of this simulator, sets a cheap one (`bench.pool.BenchDemoGateway`).
    password_hasher: str | BasePasswordHasher = "default"  # noqa: S105 (a hasher name, not a password)

    def ping(self) -> None:
        """Answer unless the knobs say otherwise."""
        apply_knobs(GATEWAY)

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
        """Create a demo account, or return the one this idempotency id already created."""
        apply_knobs(GATEWAY)
        existing = SimulatedDemoAccount.objects.filter(idempotency_id=idempotency_id).first()
        if existing is not None:
            return self._answer(existing)
        _validate(idempotency_id, name, balance, leverage, currency, group)
        if SimulatedDemoAccount.objects.filter(enabled=True).count() >= self.max_accounts:
            raise PermanentGatewayError(
                "demo account limit reached", gateway=GATEWAY, code="limit_reached"
            )
        try:
            with transaction.atomic():
                account = SimulatedDemoAccount.objects.create(
                    idempotency_id=idempotency_id,
                    name=name,
                    group=group,
                    balance=balance,
                    leverage=leverage,
                    currency=currency,
                    password_hash=make_password(
                        _initial_password(idempotency_id), hasher=self.password_hasher
                    ),
                )
        except IntegrityError:
            # A concurrent retry with the same id won the race: answer with its account.
            account = SimulatedDemoAccount.objects.get(idempotency_id=idempotency_id)
        return self._answer(account)

    def check_account(self, login: int) -> DemoAccountStatus:
        """Report on one account; an unknown login gives `exists=False`."""
        apply_knobs(GATEWAY)
        account = _find(login)
        if account is None:
            zero = Decimal("0.00")
            return DemoAccountStatus(login, False, False, False, zero, zero)
        return DemoAccountStatus(
            login=account.login,
            exists=True,
            enabled=account.enabled,
            connected=account.enabled and account.connected,
            balance=account.balance,
            # No positions are ever open on the simulated server: equity is the balance.
            equity=account.balance,
        )

    def change_password(self, login: int, password: str) -> None:
        """Set the account's master password (stored hashed)."""
        apply_knobs(GATEWAY)
        if len(password) < 8:
            raise PermanentGatewayError(
                "password must have at least 8 characters", gateway=GATEWAY, code="bad_request"
            )
        updated = SimulatedDemoAccount.objects.filter(pk=_pk(login)).update(
            password_hash=make_password(password, hasher=self.password_hasher)
        )
        if not updated:
            raise _not_found(login)

    def disable_account(self, login: int) -> None:
        """Disable the account and drop its terminal connection."""
        apply_knobs(GATEWAY)
        updated = SimulatedDemoAccount.objects.filter(pk=_pk(login)).update(
            enabled=False, connected=False
        )
        if not updated:
            raise _not_found(login)

    def _answer(self, account: SimulatedDemoAccount) -> DemoAccount:
        return DemoAccount(
            login=account.login,
            password=_initial_password(account.idempotency_id),
            server=settings.MT5_SERVER,
            balance=account.balance,
            leverage=account.leverage,
            currency=account.currency,
            created_at=account.created_at,
        )


def _validate(
    idempotency_id: str, name: str, balance: Decimal, leverage: int, currency: str, group: str
) -> None:
    problems = []
    if not idempotency_id or len(idempotency_id) > 64:
        problems.append("idempotency_id must have 1 to 64 characters")
    if not name.strip() or len(name) > 128:
        problems.append("name must have 1 to 128 characters")
    if not isinstance(balance, Decimal) or balance <= 0 or balance != balance.quantize(CENT):
        problems.append("balance must be a positive Decimal in cents")
    if not 1 <= leverage <= 1000:
        problems.append("leverage must be 1 to 1000")
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        problems.append("currency must be a 3-letter ISO code")
    if not group.startswith("demo"):
        problems.append("group must be a demo group")
    if problems:
        raise PermanentGatewayError("; ".join(problems), gateway=GATEWAY, code="bad_request")


def _initial_password(idempotency_id: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"demo-password:{idempotency_id}".encode(), hashlib.sha256
    ).hexdigest()
    # Upper and lower case, digits and a symbol: what MT5's password policy asks for.
    return f"Demo-{digest[:12]}"


def _pk(login: int) -> int:
    return login - SimulatedDemoAccount.LOGIN_OFFSET


def _find(login: int) -> SimulatedDemoAccount | None:
    return SimulatedDemoAccount.objects.filter(pk=_pk(login)).first()


def _not_found(login: int) -> PermanentGatewayError:
    return PermanentGatewayError(
        f"demo account {login} not found", gateway=GATEWAY, code="account_not_found"
    )
