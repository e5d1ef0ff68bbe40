"""How long a deposit waits, under the faults, before the product acts on it.

Three moments of each qualifying deposit the soak made, all read from the database after the
run (no clock of the soak's own is trusted):

- detected: the monitor recorded its `AccountEvent` (the event's `created_at`);
- granted: the bonus engine decided and recorded its bonus (the bonus's `created_at`; it is
  `pending` until the credit is confirmed);
- credited: the credit reached the MT5 server (the time of the credit deal carrying the
  grant's op id).

Each is measured from the deposit deal's own time on the simulated server. The check holds
when every qualifying deposit was granted within `within` seconds; the credit stage is
reported beside it (its retries after a fault belong to the bonus engine's resolver).
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from accounts.models import AccountEvent
from bonuses.models import Bonus, CreditIntent
from gateways.models import SimulatedMT5Deal
from gateways.mt5 import DealAction

from .invariants import Check, Scope

STAGES = (("detected", "deposit -> event recorded"), ("granted", "deposit -> bonus granted"))


@dataclass
class Delays:
    """Seconds from each qualifying deposit to each stage (None: the stage never came)."""

    deposits: int
    detected: list[float | None]
    granted: list[float | None]
    credited: list[float | None]


def deposit_delays(scope: Scope) -> Delays:
    """Read the three moments of every qualifying soak deposit (five queries)."""
    deals = list(
        SimulatedMT5Deal.objects.filter(
            account_id__in=scope.logins,
            action=DealAction.BALANCE,
            comment=scope.deposit_comment,
            time__gte=scope.since,
            profit__gte=scope.min_deposit,
        ).values_list("account_id", "ticket", "time")
    )
    tickets = [ticket for _, ticket, _ in deals]
    detected = dict(
        AccountEvent.objects.filter(server=settings.MT5_SERVER, ticket__in=tickets).values_list(
            "ticket", "created_at"
        )
    )
    bonuses = {
        (login, ticket): (pk, created)
        for pk, login, ticket, created in Bonus.objects.filter(
            campaign_id__in=scope.campaign_ids, deposit_deal_id__in=tickets
        ).values_list("pk", "login", "deposit_deal_id", "created_at")
    }
    grant_op = dict(
        CreditIntent.objects.filter(
            bonus_id__in=[pk for pk, _ in bonuses.values()], kind=CreditIntent.Kind.CREDIT_IN
        ).values_list("bonus_id", "op_id")
    )
    credited_at = dict(
        SimulatedMT5Deal.objects.filter(
            account_id__in=scope.logins,
            action=DealAction.CREDIT,
            comment__in=list(grant_op.values()),
        ).values_list("comment", "time")
    )
    result = Delays(deposits=len(deals), detected=[], granted=[], credited=[])
    for login, ticket, made in deals:
        bonus = bonuses.get((login, ticket))
        op_id = grant_op.get(bonus[0]) if bonus else None
        credit = credited_at.get(op_id) if op_id is not None else None
        result.detected.append(_seconds(made, detected.get(ticket)))
        result.granted.append(_seconds(made, bonus[1] if bonus else None))
        result.credited.append(_seconds(made, credit))
    return result


def check_deposit_delays(scope: Scope, *, within: float) -> Check:
    """Every qualifying deposit granted within `within` seconds of the deal, under faults."""
    check = Check(
        f"deposits granted within {within:g} s",
        f"Every qualifying deposit's bonus was granted (recorded by the bonus engine) within "
        f"{within:g} s of the deposit deal, while the faults were on. Delays are measured "
        "from the deal's time on the server to the event's and the bonus's creation and to "
        "the credit deal on the server; p95 is the nearest rank.",
    )
    delays = deposit_delays(scope)
    # None: never granted (the deposits check names which).
    late = [seconds for seconds in delays.granted if seconds is None or seconds > within]
    if late:
        never = sum(1 for seconds in late if seconds is None)
        slow = sorted(seconds for seconds in late if seconds is not None)
        if slow:
            check.problem(
                f"{len(slow)} deposit(s) granted later than {within:g} s "
                f"(the slowest after {slow[-1]:.1f} s)"
            )
        if never:
            check.problem(f"{never} deposit(s) never granted")
    check.counts = {"qualifying deposits": delays.deposits}
    for name, label in (*STAGES, ("credited", "deposit -> credit on the server")):
        values = getattr(delays, name)
        check.counts[label] = summary(values, within=within)
    return check


def summary(values: list[float | None], *, within: float) -> str:
    """`median 1.2 s, p95 3.4 s, max 5.6 s; 40 of 40 within 10 s` (never-reached counted)."""
    reached = sorted(value for value in values if value is not None)
    if not reached:
        return f"none of {len(values)} reached"
    text = (
        f"median {percentile(reached, 50):.1f} s, p95 {percentile(reached, 95):.1f} s, "
        f"max {reached[-1]:.1f} s; {sum(1 for v in reached if v <= within)} of "
        f"{len(values)} within {within:g} s"
    )
    missing = len(values) - len(reached)
    return text + (f" ({missing} never)" if missing else "")


def percentile(ordered: list[float], rank: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    index = max(0, min(len(ordered) - 1, -(-len(ordered) * rank // 100) - 1))
    return ordered[int(index)]


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else max(0.0, (end - start).total_seconds())
