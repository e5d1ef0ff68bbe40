"""One batch of a sweep: one state read for all its logins, deals only for the accounts whose
money moved, one short write transaction (see the package docstring)."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from accounts.models import MonitoredAccount
from gateways.errors import GatewayError, PermanentGatewayError
from gateways.mt5 import AccountState, get_mt5_gateway

from .calls import _isolating, _new_deals, _retrying
from .recording import SNAPSHOT_FIELDS, _count, _own_comments, _write
from .results import SweepResult, logger, server_name


def batch_ranges(*, batch_size: int | None = None) -> list[tuple[int, int]]:
    """The active logins cut into (first, last) ranges of `batch_size` accounts."""
    size = batch_size or settings.MONITOR_BATCH_SIZE
    logins = list(
        MonitoredAccount.objects.filter(server=server_name(), status=MonitoredAccount.Status.ACTIVE)
        .order_by("login")
        .values_list("login", flat=True)
    )
    return [
        (logins[start], logins[min(start + size, len(logins)) - 1])
        for start in range(0, len(logins), size)
    ]


def monitor_batch(*, first: int, last: int, dispatch: bool = True) -> SweepResult:
    """Sweep the active accounts with `first <= login <= last` (see the module docstring)."""
    result = SweepResult(batches=1)
    server = server_name()
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.MONITOR_POLL_STAMP_SECONDS)
    # The database says whether the poll stamp is stale: loading 1,000 datetimes into Python
    # would cost more than the rest of a quiet batch.
    stale = ExpressionWrapper(
        Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=stale_before),
        output_field=BooleanField(),
    )
    rows = list(
        MonitoredAccount.objects.filter(
            server=server,
            status=MonitoredAccount.Status.ACTIVE,
            login__gte=first,
            login__lte=last,
        )
        .annotate(stale=stale)
        .order_by()
        .values_list(*("login", *SNAPSHOT_FIELDS, "consecutive_errors", "stale"))
    )
    result.accounts = len(rows)
    if not rows:
        return result
    gateway = get_mt5_gateway()
    try:
        states, failed = _isolating(_retrying(gateway.get_states), [row[0] for row in rows])
    except GatewayError as exc:
        if isinstance(exc, PermanentGatewayError):
            raise
        # Unavailable for this batch: nothing is written and no account is blamed; the
        # schedule retries this batch after a short backoff.
        logger.info("monitor batch %s-%s: gateway unavailable (%s)", first, last, exc)
        result.outages = 1
        return result
    state_at = timezone.now()
    changed: dict[int, AccountState] = {}
    money_moved: list[int] = []
    errors: dict[int, str] = dict(failed)
    recovered: list[int] = []
    stamp: list[int] = []
    for login, balance, credit, equity, leverage, error_count, is_stale in rows:
        state = states.get(login)
        if state is None:
            errors.setdefault(login, "the server does not know this login")
        elif (balance, credit, equity, leverage) != state:
            changed[login] = state
            if balance != state.balance or credit != state.credit:
                money_moved.append(login)
        elif error_count:
            recovered.append(login)
        elif is_stale:
            stamp.append(login)
    deals, deferred = _new_deals(gateway, money_moved, errors)
    own = _own_comments(deals)
    # Without their deals these accounts' new numbers would swallow a deposit: they keep
    # their snapshot and are compared again next sweep. Neither they nor the batch are blamed.
    for login in (*errors, *deferred):
        changed.pop(login, None)
    with transaction.atomic():
        events = _write(
            server=server,
            changed=changed,
            deals=deals,
            own=own,
            errors=errors,
            recovered=recovered,
            state_at=state_at,
            now=now,
            result=result,
        )
        if stamp:
            MonitoredAccount.objects.filter(server=server, login__in=stamp).update(
                last_polled_at=now
            )
    result.changed = len(changed)
    for event in events:
        _count(result, event.kind)
        result.logins_with_events.add(event.login)
    if dispatch and result.logins_with_events:
        from accounts.services.events import account_events_dispatch

        result.dispatched = account_events_dispatch(logins=result.logins_with_events).handled
    return result
