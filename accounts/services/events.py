"""Dispatch of recorded account events to the apps that act on them (the bonus engine).

An event is claimed with one conditional UPDATE (pending and due, or processing with an
expired lease), handed to `account_event_recorded`'s receivers, and marked done only when
they all returned. A receiver that raises leaves the event pending with a backoff; a worker
that dies mid-way leaves it processing until its lease ends, then it is taken again. The
receivers' services are idempotent on the deal ticket, so a retry after a crash changes
nothing twice. Events of one login are handled in the order they were recorded: one that
fails holds back the later ones of its login.

A kind with a batch receiver (`receive_events_in_batches`: the bonus engine's deposits) is
handed over many at once: the first open event of each login, `MONITOR_DISPATCH_BATCH_SIZE`
at a time, claimed in one transaction and marked done in one UPDATE, so that a sweep in which
a thousand accounts deposited becomes a few large grants rather than a thousand small ones.
The rest of those logins' events follow one by one, in order.

Different logins are handled in parallel by `MONITOR_DISPATCH_THREADS` threads (on
PostgreSQL, outside a transaction: each thread has its own database connection, which would
not see an open transaction's rows), so a grant waiting for its MT5 writes does not hold up
the next account's: every login's events stay on one thread, in order, and the claim and the
bonus engine's intents make each one happen once whichever thread or worker runs it.
"""

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import AccountEvent
from accounts.signals import account_event_recorded, batch_receivers

from .parallel import in_threads, threads_for

logger = logging.getLogger(__name__)

OPEN = (AccountEvent.Status.PENDING, AccountEvent.Status.PROCESSING)


@dataclass
class DispatchResult:
    handled: int = 0
    failed: int = 0
    held: int = 0


def account_events_dispatch(
    *, logins: Iterable[int] | None = None, limit: int | None = None
) -> DispatchResult:
    """Hand every due open event (of `logins`, or all) to the receivers, oldest first."""
    now = timezone.now()
    open_events = AccountEvent.objects.filter(status__in=OPEN).order_by("login", "id")
    if logins is not None:
        open_events = open_events.filter(login__in=list(logins))
    by_login: dict[int, list[AccountEvent]] = {}
    for event in open_events[: limit or settings.MONITOR_DISPATCH_LIMIT]:
        by_login.setdefault(event.login, []).append(event)
    result = DispatchResult()
    for kind, receiver in batch_receivers().items():
        heads = [events[0] for events in by_login.values() if events[0].kind == kind]
        size = max(1, settings.MONITOR_DISPATCH_BATCH_SIZE)
        for start in range(0, len(heads), size):
            _dispatch_batch(receiver, heads[start : start + size], by_login, now, result)
    threads = threads_for(settings.MONITOR_DISPATCH_THREADS, len(by_login))
    for part in in_threads(by_login.values(), lambda events: _dispatch_login(events, now), threads):
        result.handled += part.handled
        result.failed += part.failed
        result.held += part.held
    return result


def _dispatch_batch(receiver, heads: list[AccountEvent], by_login, now, result) -> None:
    """Hand these first events of their logins to `receiver` at once; what is left of each
    login's events stays in `by_login` for the one-by-one pass (nothing, if its first event
    was not claimed or failed: the rest wait, in order)."""
    claimed = _claim_many(heads, now)
    for event in heads:
        if event.pk not in claimed:
            result.held += len(by_login.pop(event.login))
    events = [event for event in heads if event.pk in claimed]
    if not events:
        return
    failures: dict[int, Exception] = {}
    try:
        receiver(events)
    except Exception as exc:
        if len(events) == 1:
            failures[events[0].pk] = exc
        else:
            # Failed as a whole: each one again on its own, so that one bad event fails alone.
            logger.info(
                "a batch of %s %s events failed (%s); handling them one by one",
                len(events),
                events[0].kind,
                exc,
            )
            for event in events:
                try:
                    receiver([event])
                except Exception as one_exc:
                    failures[event.pk] = one_exc
    done = [event.pk for event in events if event.pk not in failures]
    AccountEvent.objects.filter(pk__in=done).update(
        status=AccountEvent.Status.DONE, claimed_until=None, handled_at=timezone.now()
    )
    for event in events:
        remaining = by_login.pop(event.login)[1:]
        if event.pk in failures:
            _retry_later(event, failures[event.pk])
            result.failed += 1
            result.held += len(remaining)
        else:
            result.handled += 1
            if remaining:
                by_login[event.login] = remaining


def _dispatch_login(events: list[AccountEvent], now) -> DispatchResult:
    """One login's events in order; the first that is not handled holds back the rest."""
    result = DispatchResult()
    for index, event in enumerate(events):
        if not _claim(event, now):
            # Not due yet, or another worker holds it: later events of the login wait.
            result.held += len(events) - index
            break
        if _handle(event):
            result.handled += 1
        else:
            result.failed += 1
            result.held += len(events) - index - 1
            break
    return result


def _claim(event: AccountEvent, now) -> bool:
    lease = now + timedelta(seconds=settings.MONITOR_EVENT_LEASE_SECONDS)
    claimed = AccountEvent.objects.filter(_due(now), pk=event.pk).update(
        status=AccountEvent.Status.PROCESSING, claimed_until=lease, attempts=F("attempts") + 1
    )
    if claimed:
        event.status, event.claimed_until = AccountEvent.Status.PROCESSING, lease
        event.attempts += 1
    return claimed == 1


def _claim_many(events: list[AccountEvent], now) -> set[int]:
    """`_claim` for many events in one transaction; the ids of those claimed. Rows another
    dispatcher holds locked are skipped (it is claiming them)."""
    lease = now + timedelta(seconds=settings.MONITOR_EVENT_LEASE_SECONDS)
    with transaction.atomic():
        claimed = set(
            AccountEvent.objects.select_for_update(skip_locked=True)
            .filter(_due(now), pk__in=[event.pk for event in events])
            .values_list("pk", flat=True)
        )
        AccountEvent.objects.filter(pk__in=claimed).update(
            status=AccountEvent.Status.PROCESSING, claimed_until=lease, attempts=F("attempts") + 1
        )
    for event in events:
        if event.pk in claimed:
            event.status, event.claimed_until = AccountEvent.Status.PROCESSING, lease
            event.attempts += 1
    return claimed


def _due(now) -> Q:
    return Q(status=AccountEvent.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=AccountEvent.Status.PROCESSING, claimed_until__lt=now
    )


def _handle(event: AccountEvent) -> bool:
    try:
        receiver = batch_receivers().get(event.kind)
        if receiver is not None:
            receiver([event])  # a batch kind behind another event of its login: a batch of one
        else:
            account_event_recorded.send(sender=AccountEvent, event=event)
    except Exception as exc:
        _retry_later(event, exc)
        return False
    AccountEvent.objects.filter(pk=event.pk).update(
        status=AccountEvent.Status.DONE, claimed_until=None, handled_at=timezone.now()
    )
    return True


def _retry_later(event: AccountEvent, exc: Exception) -> None:
    """The event failed: pending again after a backoff, its error kept."""
    # The first retries come at the short base (a transient MT5 fault usually clears within
    # a second or two, and a deposit should be a bonus within 10 s); only then doubling.
    doublings = max(0, event.attempts - 1 - settings.MONITOR_EVENT_RETRY_FLAT_ATTEMPTS)
    delay = min(
        settings.MONITOR_EVENT_RETRY_SECONDS * 2**doublings,
        settings.MONITOR_EVENT_RETRY_MAX_SECONDS,
    )
    delay *= random.uniform(0.8, 1.2)
    AccountEvent.objects.filter(pk=event.pk, status=AccountEvent.Status.PROCESSING).update(
        status=AccountEvent.Status.PENDING,
        claimed_until=None,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        last_error=f"{type(exc).__name__}: {exc}"[:1000],
    )
    log = logger.warning if event.attempts == 1 else logger.info
    log(
        "account event %s (%s on %s) failed, retry in %.0fs: %s",
        event.pk,
        event.kind,
        event.login,
        delay,
        exc,
    )


def account_events_pending() -> int:
    """How many events wait to be handled (pending or in progress)."""
    return AccountEvent.objects.filter(status__in=OPEN).count()


def account_events_retry_now(*, ids: Iterable[int]) -> int:
    """Make these events due now, if still pending (one conditional UPDATE); return how many."""
    return AccountEvent.objects.filter(pk__in=list(ids), status=AccountEvent.Status.PENDING).update(
        next_attempt_at=timezone.now()
    )
