"""Clients' broker accounts: stored with the password encrypted, checked through the gateway."""

from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError
from gateways.broker import AccountType, BrokerCredentials, get_broker_gateway
from gateways.errors import GatewayError, PermanentGatewayError
from licensing.models import Quota

from ..errors import AccountInUseError
from ..models import BrokerAccount, Trade, TradingSession
from .common import logger, quota_require

CREDENTIAL_FIELDS = {"email", "password", "account_type"}


@dataclass(frozen=True)
class BalanceAnswer:
    """A balance, and whether the broker gave it just now (False: the last one known)."""

    balance: Decimal | None
    fresh: bool
    checked_at: object


def broker_credentials(account: BrokerAccount) -> BrokerCredentials:
    """What the gateway logs in with (the password decrypted for this call only)."""
    return BrokerCredentials(
        email=account.email,
        password=str(account.password),
        account_type=cast(AccountType, account.account_type),  # the field's choices are these
    )


def broker_account_create(
    *, user, account_name: str, email: str, password: str, account_type: str
) -> BrokerAccount:
    """Store a broker login (within the plan's max accounts) and check it at once."""
    try:
        with transaction.atomic():
            quota_require(
                user=user,
                what=Quota.BROKER_ACCOUNTS,
                used=lambda: BrokerAccount.objects.filter(user=user).count(),
            )
            account = BrokerAccount.objects.create(
                user=user,
                account_name=account_name,
                email=email.strip().lower(),
                password=password,
                account_type=account_type,
            )
    except IntegrityError as exc:
        raise ApplicationError(
            "You already have this broker login.", code="duplicate_account"
        ) from exc
    broker_account_check(account=account)
    return account


def broker_account_update(*, account: BrokerAccount, **fields) -> BrokerAccount:
    """Change name or credentials; new credentials are checked again."""
    if "email" in fields:
        fields["email"] = fields["email"].strip().lower()
    for name, value in fields.items():
        setattr(account, name, value)
    credentials_changed = bool(CREDENTIAL_FIELDS & fields.keys())
    if credentials_changed:
        account.connection_status = BrokerAccount.Connection.UNKNOWN
    try:
        with transaction.atomic():
            account.save(update_fields=[*fields, "connection_status", "updated_at"])
    except IntegrityError as exc:
        raise ApplicationError(
            "You already have this broker login.", code="duplicate_account"
        ) from exc
    if credentials_changed:
        broker_account_check(account=account)
    return account


def broker_account_delete(*, account: BrokerAccount) -> None:
    """Delete an account with no trades; its idle sessions go with it."""
    with transaction.atomic():
        if TradingSession.objects.filter(account=account, is_active=True).exists():
            raise AccountInUseError("A running session uses this account: stop it first.")
        if Trade.objects.filter(account=account).exists():
            raise AccountInUseError(
                "This account has trades in its history; they keep it. Rename it instead."
            )
        TradingSession.objects.filter(account=account).delete()
        account.delete()


def broker_account_check(*, account: BrokerAccount) -> BrokerAccount:
    """Log in through the gateway and record what it says (never raises on a broker fault)."""
    now = timezone.now()
    try:
        connection = get_broker_gateway().test_connection(broker_credentials(account))
    except PermanentGatewayError as exc:
        logger.info("broker account %s: check refused (%s)", account.pk, exc.code)
        status, balance = BrokerAccount.Connection.FAILED, account.last_balance
    except GatewayError:
        logger.warning("broker account %s: the broker did not answer", account.pk)
        status, balance = BrokerAccount.Connection.UNAVAILABLE, account.last_balance
    else:
        status = (
            BrokerAccount.Connection.CONNECTED
            if connection.connected
            else BrokerAccount.Connection.FAILED
        )
        balance = connection.balance if connection.connected else account.last_balance
    BrokerAccount.objects.filter(pk=account.pk).update(
        connection_status=status, last_balance=balance, last_checked_at=now
    )
    account.connection_status, account.last_balance, account.last_checked_at = status, balance, now
    return account


def broker_account_balance(*, account: BrokerAccount) -> BalanceAnswer:
    """The balance from the broker now, or the last one known when it does not answer."""
    try:
        balance = get_broker_gateway().get_balance(broker_credentials(account))
    except GatewayError as exc:
        if isinstance(exc, PermanentGatewayError) and exc.code == "auth_failed":
            BrokerAccount.objects.filter(pk=account.pk).update(
                connection_status=BrokerAccount.Connection.FAILED
            )
        return BalanceAnswer(account.last_balance, False, account.last_checked_at)
    now = timezone.now()
    BrokerAccount.objects.filter(pk=account.pk).update(
        last_balance=balance,
        last_checked_at=now,
        connection_status=BrokerAccount.Connection.CONNECTED,
    )
    account.last_balance, account.last_checked_at = balance, now
    return BalanceAnswer(balance, True, now)
