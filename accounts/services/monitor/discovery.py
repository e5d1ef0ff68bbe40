"""Discovery: the logins on the server that nobody monitors yet become monitored accounts."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AccountEvent, MonitoredAccount
from gateways.mt5 import get_mt5_gateway

from .results import logger, server_name


def monitor_discover(*, batch_size: int | None = None) -> int:
    """Register every login on the server that is not monitored yet; return how many.

    An account registered within `MONITOR_REGISTRATION_WINDOW_HOURS` is new to the broker: it
    gets a registration event and is watched from its registration (its first deposit counts).
    An older one, found when the monitor starts on an existing server, is watched from now.
    """
    gateway = get_mt5_gateway()
    server = server_name()
    known = set(MonitoredAccount.objects.filter(server=server).values_list("login", flat=True))
    new = [login for login in gateway.list_logins() if login not in known]
    size = batch_size or settings.MONITOR_BATCH_SIZE
    registered = 0
    for start in range(0, len(new), size):
        accounts = gateway.get_accounts(new[start : start + size])
        registered += _register(accounts.values(), server=server)
    if registered:
        logger.info("monitor discovered %s new accounts", registered)
    return registered


def _register(accounts, *, server: str) -> int:
    now = timezone.now()
    window = now - timedelta(hours=settings.MONITOR_REGISTRATION_WINDOW_HOURS)
    rows, events = [], []
    for account in accounts:
        recent = account.registered_at >= window
        row = MonitoredAccount(
            server=server,
            login=account.login,
            registered_at=account.registered_at,
            watch_from=account.registered_at if recent else now,
            last_polled_at=now,
        )
        if not recent:
            row.balance, row.credit = account.balance, account.credit
            row.equity, row.leverage, row.state_at = account.equity, account.leverage, now
        else:
            events.append(
                AccountEvent(
                    server=server,
                    login=account.login,
                    kind=AccountEvent.Kind.REGISTRATION,
                    occurred_at=account.registered_at,
                )
            )
        rows.append(row)
    with transaction.atomic():
        created = MonitoredAccount.objects.bulk_create(rows, ignore_conflicts=True)
        AccountEvent.objects.bulk_create(events, ignore_conflicts=True)
    return len(created)
