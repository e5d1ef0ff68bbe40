"""Many running sessions at once, in bulk: what the benchmark and large tests start from.

Each session gets its own user (subscribed to the channel, an active-session quota hold as
`session_start` would take) and its own demo broker account; the rows are what the services
would have written, without calling the broker for each.
"""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher, make_password
from django.db import transaction
from django.utils import timezone

from gateways.models import SimulatedBrokerAccount
from licensing.models import Quota, QuotaHold

from .engine import GaleSettings
from .models import BrokerAccount, ChannelSubscription, SignalChannel, TradingSession
from .services.sessions import quota_ref

DEFAULTS = {
    "trade_amount": Decimal("5.00"),
    "gale_limit": 2,
    "gale_multiplier": Decimal("2.00"),
    "stop_profit": Decimal("100.00"),
    "stop_loss": Decimal("50.00"),
}


def sessions_seed(
    *,
    count: int,
    channel: SignalChannel,
    prefix: str = "seed",
    chunk: int = 2000,
    simulated_broker: dict | None = None,
    **settings,
) -> list[int]:
    """Create `count` users, each with a demo account and a running session subscribed to
    `channel`; returns the session ids.

    `simulated_broker` (e.g. `{"win_rate": Decimal("0.5")}`) also opens their accounts on the
    simulated broker, with a cheap password hash (1,000 PBKDF2 rounds: a bench measures the
    product, not the simulator's hashing)."""
    User = get_user_model()
    fields = {**DEFAULTS, **settings}
    snapshot = GaleSettings(**{**fields, "max_trade_amount": None}).to_json()
    unusable = make_password(None)
    now = timezone.now()
    session_ids: list[int] = []
    for start in range(0, count, chunk):
        numbers = range(start, min(count, start + chunk))
        with transaction.atomic():
            users = User.objects.bulk_create(
                User(
                    email=f"{prefix}{n}@bench.test",
                    username=f"{prefix}{n}",
                    password=unusable,
                )
                for n in numbers
            )
            accounts = BrokerAccount.objects.bulk_create(
                BrokerAccount(
                    user=user,
                    account_name=f"Demo of {user.username}",
                    email=user.email,
                    password=f"pw-{user.username}",
                    account_type=BrokerAccount.AccountType.DEMO,
                    last_balance=Decimal("10000.00"),
                    connection_status=BrokerAccount.Connection.CONNECTED,
                )
                for user in users
            )
            sessions = TradingSession.objects.bulk_create(
                TradingSession(
                    user=user,
                    account=account,
                    session_name=f"Session of {user.username}",
                    is_active=True,
                    settings_snapshot=snapshot,
                    started_at=now,
                    **fields,
                )
                for user, account in zip(users, accounts, strict=True)
            )
            ChannelSubscription.objects.bulk_create(
                ChannelSubscription(user=user, channel=channel) for user in users
            )
            if simulated_broker is not None:
                SimulatedBrokerAccount.objects.bulk_create(
                    SimulatedBrokerAccount(
                        email=account.email,
                        account_type=account.account_type,
                        password_hash=_cheap_hash(f"pw-{account.user.username}"),
                        balance=Decimal("10000.00"),
                        **simulated_broker,
                    )
                    for account in accounts
                )
            QuotaHold.objects.bulk_create(
                QuotaHold(user=s.user, quota=Quota.ACTIVE_SESSIONS, ref=quota_ref(s.pk))
                for s in sessions
            )
        session_ids += [s.pk for s in sessions]
    return session_ids


def _cheap_hash(password: str) -> str:
    hasher = get_hasher("default")
    if isinstance(hasher, PBKDF2PasswordHasher):
        return hasher.encode(password, hasher.salt(), iterations=1000)
    return hasher.encode(password, hasher.salt())
