"""What the trading services share: quota refusals and queueing work after commit."""

import logging
from collections.abc import Callable

from django.db import transaction

from licensing.errors import QuotaExceededError
from licensing.models import Quota
from licensing.services import quota_allows

logger = logging.getLogger("trading_sessions")


def quota_require(*, user, what: Quota, used: Callable[[], int], amount: int = 1) -> None:
    """409 `quota_exceeded` unless the plan allows `amount` more of `what`.

    Call inside the transaction that then writes: the user's quota lock is held until it
    commits, so concurrent requests are decided one after the other."""
    decision = quota_allows(user=user, what=what, used=used, amount=amount)
    if not decision.allowed:
        raise QuotaExceededError(
            f"Your plan ({decision.plan}) allows {decision.limit} of "
            f"{Quota(what).label.lower()}; {decision.used} in use.",
            extra={"quota": decision.quota, "limit": decision.limit, "used": decision.used},
        )


def enqueue(name: str, *, eta=None, **kwargs) -> None:
    """Queue a trading_sessions task once the current transaction commits (never raises).

    Beat's sweeper finds the same work (pending trades, overdue settlements), so a lost
    message only delays it."""

    def send():
        from trading_sessions import tasks

        try:
            getattr(tasks, name).apply_async(kwargs=kwargs, eta=eta)
        except Exception:
            logger.exception("trading_sessions: could not queue %s", name)

    transaction.on_commit(send)
