"""Letting the workers finish: wait until nothing the soak started is still on its way.

The workload has stopped; the faults are still on. What remains: deals the monitor has not
recorded yet, account events not handled, MT5 writes pending or of unknown outcome (beat's
resolver takes them every minute), trades pending or open, deliveries waiting for their
channel, activations waiting for an account, signals still fanning out.
"""

import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from accounts.models import AccountEvent
from bonuses.models import CreditIntent
from delivery.channels import channels_all
from delivery.models import Delivery
from demo_pool.models import ActivationRequest
from trading_sessions.models import Signal, Trade


@dataclass
class Remaining:
    """What is still on its way, per kind (all zero: drained)."""

    deals_not_recorded: int
    events_open: int
    intents_open: int
    trades_open: int
    deliveries_pending: int
    activations_waiting: int
    signals_fanning_out: int

    @property
    def total(self) -> int:
        return sum(vars(self).values())

    def __str__(self) -> str:
        shown = [f"{name.replace('_', ' ')} {n}" for name, n in vars(self).items() if n]
        return ", ".join(shown) or "nothing"


def remaining(
    *,
    logins: list[int],
    tickets: list[int],
    session_ids: list[int],
    since: datetime,
    press_pass_prefix: str,
    channel: str,
) -> Remaining:
    """Count what the soak started and the product has not finished."""
    recorded = set(
        AccountEvent.objects.filter(server=settings.MT5_SERVER, ticket__in=tickets).values_list(
            "ticket", flat=True
        )
    )
    return Remaining(
        deals_not_recorded=len(set(tickets) - recorded),
        events_open=AccountEvent.objects.filter(
            login__in=logins,
            status__in=[AccountEvent.Status.PENDING, AccountEvent.Status.PROCESSING],
        ).count(),
        intents_open=CreditIntent.objects.filter(
            login__in=logins,
            status__in=[CreditIntent.Status.PENDING, CreditIntent.Status.UNKNOWN],
        ).count(),
        trades_open=Trade.objects.filter(
            session_id__in=session_ids, result__in=Trade.UNSETTLED
        ).count(),
        deliveries_pending=Delivery.objects.filter(
            created_at__gte=since,
            status=Delivery.Status.PENDING,
            # Only what a worker sends: a link handed to the caller has nothing to wait for.
            method__in=[c.method for c in channels_all() if not c.hands_link_to_caller],
        ).count(),
        activations_waiting=ActivationRequest.objects.filter(
            user_id__startswith=press_pass_prefix, status__in=ActivationRequest.OPEN
        ).count(),
        signals_fanning_out=Signal.objects.filter(
            channel__code=channel, status=Signal.Status.FANNING_OUT
        ).count(),
    )


def drain(*, timeout: float, say=print, every: float = 2.0, **scope) -> tuple[Remaining, float]:
    """Wait until `remaining(**scope)` is all zero or `timeout` seconds pass; returns the last
    count and how long it took. Prints what is left every 15 s."""
    started = time.monotonic()
    next_line = started + 15
    while True:
        left = remaining(**scope)
        waited = time.monotonic() - started
        if not left.total or waited >= timeout:
            return left, waited
        if time.monotonic() >= next_line:
            next_line += 15
            say(f"  draining ({waited:.0f} s): {left}")
        time.sleep(every)
