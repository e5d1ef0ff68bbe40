"""What staff do to one monitored account: register it by hand, resume it, post a test deal."""

from decimal import Decimal

from django.db import transaction

from accounts.models import MonitoredAccount
from accounts.services.audit import audit_record
from core.errors import ApplicationError, ConflictError, NotFoundError
from gateways.errors import PermanentGatewayError
from gateways.mt5 import get_mt5_gateway

from .discovery import _register
from .results import server_name


def monitor_register(*, login: int, actor=None) -> MonitoredAccount:
    """Staff register one login by hand (idempotent); 404 if the server does not know it."""
    server = server_name()
    existing = MonitoredAccount.objects.filter(server=server, login=login).first()
    if existing is not None:
        return existing
    accounts = get_mt5_gateway().get_accounts([login])
    if login not in accounts:
        raise NotFoundError(f"MT5 account {login} not found.", code="account_not_found")
    _register([accounts[login]], server=server)
    row = MonitoredAccount.objects.get(server=server, login=login)
    audit_record(action="monitor.registered", obj=row, actor=actor, mt5_login=login)
    return row


def monitor_reset_errors(*, login: int, actor=None) -> MonitoredAccount:
    """Resume a paused account: active again, errors cleared, audited."""
    with transaction.atomic():
        row = (
            MonitoredAccount.objects.select_for_update()
            .filter(server=server_name(), login=login)
            .first()
        )
        if row is None:
            raise NotFoundError(f"MT5 account {login} is not monitored.", code="not_monitored")
        before = {"status": row.status, "consecutive_errors": row.consecutive_errors}
        row.status = MonitoredAccount.Status.ACTIVE
        row.consecutive_errors, row.last_error, row.paused_at = 0, "", None
        row.save(update_fields=["status", "consecutive_errors", "last_error", "paused_at"])
        audit_record(
            action="monitor.errors_reset",
            obj=row,
            actor=actor,
            mt5_login=login,
            before=before,
            after={"status": row.status, "consecutive_errors": 0},
        )
    return row


def monitor_test_deal(*, login: int, amount: Decimal, actor=None) -> int:
    """Post a balance deal (positive: deposit, negative: withdrawal) on the server for testing
    the pipeline end to end; the monitor detects it like any other. Returns the deal ticket.

    A withdrawal beyond the balance is the caller's to fix: 409 `insufficient_balance`.
    """
    if amount == 0:
        raise ApplicationError("The amount must not be zero.", code="invalid_amount")
    row = MonitoredAccount.objects.filter(server=server_name(), login=login).first()
    if row is None:
        raise NotFoundError(f"MT5 account {login} is not monitored.", code="not_monitored")
    label = "test deposit" if amount > 0 else "test withdrawal"
    try:
        ticket = get_mt5_gateway().post_balance(login, amount, comment=label)
    except PermanentGatewayError as exc:
        if exc.code != "insufficient_balance":
            raise
        raise ConflictError(str(exc), code=exc.code) from exc
    audit_record(
        action=f"monitor.{label.replace(' ', '_')}",
        obj=row,
        actor=actor,
        mt5_login=login,
        after={"amount": str(amount), "deal_id": ticket},
    )
    return ticket
