"""The simulated broker: accounts and trades in the database, so every process sees them."""

import hashlib
import hmac
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import cast

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.money import CENT
from gateways.errors import PermanentGatewayError
from gateways.models import SimulatedBrokerAccount, SimulatedBrokerTrade
from gateways.simulation import apply_knobs

from .types import (
    BrokerConnection,
    BrokerCredentials,
    BrokerTrade,
    BrokerTradeResult,
    Direction,
    TradeStatus,
)

GATEWAY = "broker"
STARTING_BALANCE = {"demo": Decimal("10000.00"), "real": Decimal("0.00")}
MIN_DURATION_SECONDS, MAX_DURATION_SECONDS = 5, 86_400


def draw_outcome(source: str, win_rate: Decimal, draw_rate: Decimal) -> str:
    """Decide a trade's outcome from `source`: a draw `u` in [0, 1) from its hash.

    Deterministic, so the same source gives the same outcome, and a test controls it with
    the rates alone: win_rate 1 always wins, win_rate 0 with draw_rate 0 always loses.
    """
    digest = hashlib.sha256(source.encode()).digest()
    u = Decimal(int.from_bytes(digest[:8], "big")) / Decimal(2**64)
    if u < win_rate:
        return "win"
    if u < win_rate + draw_rate:
        return "draw"
    return "loss"


def trade_profit(outcome: str, amount: Decimal, payout: Decimal) -> Decimal:
    """What a settled trade made: +amount*payout (cents, rounded down), -amount or 0."""
    if outcome == "win":
        return (amount * payout).quantize(CENT, rounding=ROUND_DOWN)
    if outcome == "loss":
        return -amount
    return Decimal("0.00")


def outcome_source(account: SimulatedBrokerAccount, n: int) -> str:
    """What the n-th trade of an account draws its outcome from: the seed, the login, n.

    Seeded (`SIMULATED_BROKER_SEED`) rather than random: the same trades on the same
    accounts in the same order come out the same, so a run can be replayed."""
    return f"{settings.SIMULATED_BROKER_SEED}:{account.account_type}:{account.email}:{n}"


class SimulatedBrokerGateway:
    """A broker backed by `SimulatedBrokerAccount` and `SimulatedBrokerTrade` rows.

    Accounts appear on first use (demo with 10000.00, real with 0.00 unless staff seed one,
    payout `SIMULATED_BROKER_PAYOUT`); a trade's stake is debited at open and what it
    returns is credited when it is settled: on the first call for that account after it
    expired. Outcomes follow the account's rates, drawn from a seeded source (see
    `outcome_source`); latency and errors come from the admin's knobs.
    """

    def ping(self) -> None:
        """Answer unless the knobs say otherwise."""
        apply_knobs(GATEWAY)

    def test_connection(self, credentials: BrokerCredentials) -> BrokerConnection:
        """Log in; wrong credentials give `connected=False`."""
        apply_knobs(GATEWAY)
        try:
            account = _login(credentials)
        except PermanentGatewayError as exc:
            if exc.code != "auth_failed":
                raise
            return BrokerConnection(connected=False, balance=Decimal("0.00"))
        return BrokerConnection(connected=True, balance=_settled_balance(account))

    def get_balance(self, credentials: BrokerCredentials) -> Decimal:
        """Return the balance after settling every expired trade."""
        apply_knobs(GATEWAY)
        return _settled_balance(_login(credentials))

    def open_trade(
        self,
        credentials: BrokerCredentials,
        *,
        asset: str,
        direction: Direction,
        amount: Decimal,
        duration_seconds: int,
        client_order_id: str,
    ) -> BrokerTrade:
        """Open a trade, debiting the stake once; a known `client_order_id` replays it."""
        apply_knobs(GATEWAY)
        account = _login(credentials)
        existing = account.trades.filter(client_order_id=client_order_id).first()
        if existing is not None:
            return _trade(existing)
        _validate(asset, direction, amount, duration_seconds, client_order_id)
        _settle_due(account)
        opened_at = timezone.now()
        try:
            with transaction.atomic():
                # Conditional debit: two concurrent opens can never overdraw the account.
                debited = SimulatedBrokerAccount.objects.filter(
                    pk=account.pk, balance__gte=amount
                ).update(balance=F("balance") - amount, trades_opened=F("trades_opened") + 1)
                if not debited:
                    raise PermanentGatewayError(
                        "insufficient funds", gateway=GATEWAY, code="insufficient_funds"
                    )
                # Our UPDATE holds the row: no other open can take the same n.
                n = SimulatedBrokerAccount.objects.values_list("trades_opened", flat=True).get(
                    pk=account.pk
                )
                trade = SimulatedBrokerTrade.objects.create(
                    account=account,
                    client_order_id=client_order_id,
                    asset=asset,
                    direction=direction,
                    amount=amount,
                    payout=account.payout,
                    outcome=draw_outcome(
                        outcome_source(account, n), account.win_rate, account.draw_rate
                    ),
                    opened_at=opened_at,
                    expires_at=opened_at + timedelta(seconds=duration_seconds),
                )
        except IntegrityError:
            # A concurrent retry with the same order id won; the rollback undid our debit.
            trade = account.trades.get(client_order_id=client_order_id)
        return _trade(trade)

    def get_trade_result(self, credentials: BrokerCredentials, trade_id: str) -> BrokerTradeResult:
        """Return "open" until the trade expires, then its outcome (settling it once)."""
        apply_knobs(GATEWAY)
        account = _login(credentials)
        # Ids are our primary keys: anything else (or too big for one) is simply not found.
        valid = str(trade_id).isdigit() and len(str(trade_id)) <= 18
        trade = account.trades.filter(pk=int(trade_id)).first() if valid else None
        if trade is None:
            raise PermanentGatewayError(
                f"trade {trade_id} not found", gateway=GATEWAY, code="trade_not_found"
            )
        if timezone.now() < trade.expires_at:
            return BrokerTradeResult(str(trade.pk), "open", Decimal("0.00"), None)
        _settle(trade)
        return BrokerTradeResult(
            trade_id=str(trade.pk),
            status=cast(TradeStatus, trade.outcome),  # the column's choices
            profit=trade_profit(trade.outcome, trade.amount, trade.payout),
            closed_at=trade.expires_at,
        )


def _login(credentials: BrokerCredentials) -> SimulatedBrokerAccount:
    if credentials.account_type not in STARTING_BALANCE:
        raise PermanentGatewayError(
            "account_type must be demo or real", gateway=GATEWAY, code="bad_request"
        )
    email = credentials.email.strip().lower()
    if not email or not credentials.password:
        raise PermanentGatewayError(
            "email and password needed", gateway=GATEWAY, code="auth_failed"
        )
    lookup = {"email": email, "account_type": credentials.account_type}
    account = SimulatedBrokerAccount.objects.filter(**lookup).first()
    if account is None:
        try:
            with transaction.atomic():
                account = SimulatedBrokerAccount.objects.create(
                    **lookup,
                    password_hash=make_password(credentials.password),
                    balance=STARTING_BALANCE[credentials.account_type],
                    payout=Decimal(str(settings.SIMULATED_BROKER_PAYOUT)),
                )
        except IntegrityError:
            account = SimulatedBrokerAccount.objects.get(**lookup)
    # Like a real broker's session: a login checked once (slow hash) is trusted for this
    # process while the stored hash stays the same; a changed password is checked again.
    proof = (account.pk, account.password_hash, _fingerprint(credentials.password))
    if proof not in _VERIFIED:
        if not check_password(credentials.password, account.password_hash):
            raise PermanentGatewayError(
                "wrong email or password", gateway=GATEWAY, code="auth_failed"
            )
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED.add(proof)
    return account


_VERIFIED: set[tuple[int, str, str]] = set()
_VERIFIED_MAX = 100_000


def _fingerprint(password: str) -> str:
    """A keyed digest of a password, so the cache never holds one in clear."""
    return hmac.new(settings.SECRET_KEY.encode(), password.encode(), hashlib.sha256).hexdigest()


def _validate(
    asset: str, direction: str, amount: Decimal, duration_seconds: int, client_order_id: str
) -> None:
    problems = []
    if not asset or len(asset) > 32:
        problems.append("asset must have 1 to 32 characters")
    if direction not in ("call", "put"):
        problems.append("direction must be call or put")
    if not isinstance(amount, Decimal) or amount <= 0 or amount != amount.quantize(CENT):
        problems.append("amount must be a positive Decimal in cents")
    if not MIN_DURATION_SECONDS <= duration_seconds <= MAX_DURATION_SECONDS:
        problems.append(f"duration must be {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS} s")
    if not client_order_id or len(client_order_id) > 64:
        problems.append("client_order_id must have 1 to 64 characters")
    if problems:
        raise PermanentGatewayError("; ".join(problems), gateway=GATEWAY, code="bad_request")


def _settle(trade: SimulatedBrokerTrade) -> None:
    """Credit what an expired trade returns, once however many callers ask at the same time."""
    returned = trade.amount + trade_profit(trade.outcome, trade.amount, trade.payout)
    with transaction.atomic():
        claimed = SimulatedBrokerTrade.objects.filter(pk=trade.pk, settled_at=None).update(
            settled_at=timezone.now()
        )
        if claimed and returned:
            SimulatedBrokerAccount.objects.filter(pk=trade.account_id).update(
                balance=F("balance") + returned
            )


def _settle_due(account: SimulatedBrokerAccount) -> None:
    for trade in account.trades.filter(settled_at=None, expires_at__lte=timezone.now()):
        _settle(trade)


def _settled_balance(account: SimulatedBrokerAccount) -> Decimal:
    _settle_due(account)
    return SimulatedBrokerAccount.objects.values_list("balance", flat=True).get(pk=account.pk)


def _trade(trade: SimulatedBrokerTrade) -> BrokerTrade:
    return BrokerTrade(
        trade_id=str(trade.pk),
        asset=trade.asset,
        direction=cast(Direction, trade.direction),  # the column's choices
        amount=trade.amount,
        opened_at=trade.opened_at,
        expires_at=trade.expires_at,
    )
