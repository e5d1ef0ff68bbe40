"""A deposit event whose receiver keeps meeting transient MT5 faults is tried again about every
second for its first retries, not after doubling waits: in the soak at 30% faults the one
deposit granted after 10 s had waited out doubling retries, not the sweep."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from accounts import signals
from accounts.models import AccountEvent
from accounts.services.events import account_events_dispatch


@pytest.mark.django_db
def test_a_failing_event_is_retried_each_second_for_its_first_attempts_then_backs_off(
    monkeypatch,
):
    calls = []

    def flaky(events):
        calls.append(timezone.now())
        if len(calls) <= 9:
            raise ConnectionError("MT5 did not answer")

    # Deposits go to their batch receiver (the bonus engine's): this one fails nine times.
    monkeypatch.setitem(signals._batch_receivers, "deposit", flaky)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        started = timezone.now()
        AccountEvent.objects.create(
            server=settings.MT5_SERVER,
            login=10001,
            kind=AccountEvent.Kind.DEPOSIT,
            ticket=555,
            amount=Decimal("100.00"),
            occurred_at=started,
            status=AccountEvent.Status.PENDING,
            next_attempt_at=started,
        )
        # The monitor's worker dispatches due events every second.
        for _ in range(30):
            account_events_dispatch()
            if AccountEvent.objects.get().status == AccountEvent.Status.DONE:
                break
            clock.shift(timedelta(seconds=1))
        handled_after = (timezone.now() - started).total_seconds()

    assert AccountEvent.objects.get().status == AccountEvent.Status.DONE
    assert len(calls) == 10
    # Nine failures, still handled within 10 s of the deposit being recorded.
    assert handled_after <= 10


@pytest.mark.django_db
def test_past_the_flat_attempts_the_wait_doubles(monkeypatch):
    event = AccountEvent.objects.create(
        server=settings.MT5_SERVER,
        login=10002,
        kind=AccountEvent.Kind.DEPOSIT,
        ticket=556,
        amount=Decimal("100.00"),
        occurred_at=timezone.now(),
        status=AccountEvent.Status.PENDING,
        next_attempt_at=timezone.now(),
        attempts=settings.MONITOR_EVENT_RETRY_FLAT_ATTEMPTS + 3,
    )

    def failing(events):
        raise ConnectionError("MT5 did not answer")

    monkeypatch.setitem(signals._batch_receivers, "deposit", failing)
    with time_machine.travel(timezone.now(), tick=False):
        account_events_dispatch()
        wait = (
            AccountEvent.objects.get(pk=event.pk).next_attempt_at - timezone.now()
        ).total_seconds()
    # Attempt FLAT + 4: three doublings of the base, within the 20% jitter.
    base = settings.MONITOR_EVENT_RETRY_SECONDS * 8
    assert base * 0.8 <= wait <= base * 1.2
