"""Snapshots and events: a batch's changed accounts locked, their new deals classified into
`AccountEvent`s, snapshots and cursors advanced together with the events they produced."""

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings

from accounts.models import AccountEvent, MonitoredAccount
from accounts.signals import own_operation_comments
from gateways.mt5 import AccountState, DealAction, DealEntry, MT5Deal

from .results import SweepResult, logger

TRADE_ACTIONS = frozenset({DealAction.BUY, DealAction.SELL})


CLOSING_ENTRIES = frozenset({DealEntry.OUT, DealEntry.INOUT})


SNAPSHOT_FIELDS = ("balance", "credit", "equity", "leverage")


# Only these write anything: the rest of a quiet sweep is reads.
WRITE_FIELDS = [
    *SNAPSHOT_FIELDS,
    "state_at",
    "deal_cursor",
    "consecutive_errors",
    "last_error",
    "status",
    "paused_at",
    "last_polled_at",
    "last_changed_at",
]


def _own_comments(deals: dict[int, list[MT5Deal]]) -> set[str]:
    comments = {deal.comment for items in deals.values() for deal in items if deal.comment}
    if not comments:
        return set()
    own: set[str] = set()
    for _receiver, answer in own_operation_comments.send(
        sender=MonitoredAccount, comments=comments
    ):
        own |= set(answer or ())
    return own


def _write(
    *,
    server: str,
    changed: dict[int, AccountState],
    deals: dict[int, list[MT5Deal]],
    own: set[str],
    errors: dict[int, str],
    recovered: list[int],
    state_at: datetime,
    now: datetime,
    result: SweepResult,
) -> list[AccountEvent]:
    """Lock the rows this batch changes (login order: no deadlocks between sweeps), record the
    events against what the locked rows say, advance snapshots and cursors with them."""
    touched = sorted({*changed, *errors, *recovered})
    if not touched:
        return []
    locked = (
        MonitoredAccount.objects.select_for_update()
        .filter(server=server, login__in=touched)
        .order_by("login")
    )
    events: list[AccountEvent] = []
    updated: list[MonitoredAccount] = []
    for row in locked:
        login = row.login
        if login in errors:
            _count_error(row, errors[login], now=now, result=result)
            updated.append(row)
            continue
        row.consecutive_errors, row.last_error = 0, ""
        row.last_polled_at = now
        if login in changed:
            try:
                events.extend(_classify(row, changed[login], deals.get(login, ()), own, state_at))
            except Exception as exc:  # one account's odd data must not stop its batch
                logger.exception("monitor could not process account %s", login)
                row.refresh_from_db()
                _count_error(row, f"processing failed: {exc}", now=now, result=result)
        updated.append(row)
    AccountEvent.objects.bulk_create(events, ignore_conflicts=True)
    MonitoredAccount.objects.bulk_update(updated, WRITE_FIELDS)
    return events


def _count_error(row: MonitoredAccount, error: str, *, now: datetime, result: SweepResult) -> None:
    """One more error in a row; the one that reaches the threshold pauses (and warns once)."""
    row.consecutive_errors += 1
    row.last_error = error[:500]
    result.errors += 1
    paused = row.consecutive_errors >= settings.MONITOR_PAUSE_AFTER_ERRORS
    if paused and row.status == MonitoredAccount.Status.ACTIVE:
        row.status, row.paused_at = MonitoredAccount.Status.PAUSED, now
        result.paused += 1
        logger.warning(
            "monitor paused account %s after %s errors in a row: %s",
            row.login,
            row.consecutive_errors,
            row.last_error,
        )


def _classify(
    row: MonitoredAccount,
    state: AccountState,
    deals: Iterable[MT5Deal],
    own: set[str],
    state_at: datetime,
) -> list[AccountEvent]:
    """The events one account's new deals and new state mean; moves `row` forward.

    Balance deals are deposits and withdrawals, unless they are the system's own (their
    comment is one of its operation ids). Closing trade deals feed Type C conversion. Trading
    profit, swaps, commissions, charges, corrections, credit and stop-out compensation never
    become deposits or withdrawals. Equity falling to the credit is a drawdown, once per fall.
    """
    events: list[AccountEvent] = []
    running = row.balance  # the balance just before each deal, for the withdrawal rule
    cursor = row.deal_cursor
    base = {"server": row.server, "login": row.login}
    for deal in sorted(deals, key=lambda item: item.ticket):
        if deal.ticket <= cursor:
            continue  # an overlapping sweep took it into account already
        cursor = deal.ticket
        if deal.time < row.watch_from:
            continue  # history from before the monitor watched this account
        is_own = deal.comment in own
        if deal.action == DealAction.BALANCE and deal.profit and not is_own:
            kind = AccountEvent.Kind.DEPOSIT if deal.profit > 0 else AccountEvent.Kind.WITHDRAWAL
            events.append(
                AccountEvent(
                    **base,
                    kind=kind,
                    ticket=deal.ticket,
                    amount=abs(deal.profit),
                    balance_before=running,
                    comment=deal.comment[:64],
                    occurred_at=deal.time,
                )
            )
        elif deal.action in TRADE_ACTIONS and deal.entry in CLOSING_ENTRIES and not is_own:
            events.append(
                AccountEvent(
                    **base,
                    kind=AccountEvent.Kind.TRADE,
                    ticket=deal.ticket,
                    amount=deal.profit,
                    lots=deal.volume,
                    comment=deal.comment[:64],
                    occurred_at=deal.time,
                )
            )
        if deal.action != DealAction.CREDIT:
            running += deal.profit
    was_in_drawdown = row.credit > 0 and row.equity <= row.credit
    if row.state_at is None or row.state_at <= state_at:
        now_in_drawdown = state.credit > 0 and state.equity <= state.credit
        if now_in_drawdown and not was_in_drawdown:
            events.append(
                AccountEvent(
                    **base,
                    kind=AccountEvent.Kind.DRAWDOWN,
                    equity=state.equity,
                    credit=state.credit,
                    occurred_at=state_at,
                )
            )
        row.balance, row.credit, row.equity, row.leverage = state
        row.state_at = state_at
        row.last_changed_at = state_at
    row.deal_cursor = cursor
    return events


def _count(result: SweepResult, kind: str) -> None:
    names: dict[str, str] = {
        AccountEvent.Kind.DEPOSIT: "deposits",
        AccountEvent.Kind.WITHDRAWAL: "withdrawals",
        AccountEvent.Kind.DRAWDOWN: "drawdowns",
        AccountEvent.Kind.TRADE: "trades",
    }
    name = names.get(kind)
    if name:
        setattr(result, name, getattr(result, name) + 1)
