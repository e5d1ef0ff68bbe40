"""Thin Celery tasks of the bonus engine: one service call each, a small summary out."""

import logging
import uuid
from collections import Counter

from celery import shared_task

from bonuses.services import (
    bonuses_expire_due,
    credit_reconcile,
    intents_resolve,
    operation_execute,
)

logger = logging.getLogger(__name__)


@shared_task(name="bonuses.expire_due")
def expire_due() -> int:
    """Expire active bonuses past their expiry (hourly); return how many."""
    return bonuses_expire_due()


@shared_task(name="bonuses.resolve_intents")
def resolve_intents() -> dict[str, int]:
    """Finish credit writes left pending or unknown (every minute); return the counts."""
    return intents_resolve()


@shared_task(name="bonuses.resolve_operation")
def resolve_operation(operation: str) -> dict[str, int]:
    """Look again at one operation whose write's outcome was unknown, seconds after it was."""
    intents = operation_execute(uuid.UUID(operation))
    return dict(Counter(intent.status for intent in intents))


@shared_task(name="bonuses.reconcile_credit")
def reconcile_credit() -> int:
    """Compare ledger and server credit (daily), log each drift; return how many drift."""
    drifts = credit_reconcile()
    for drift in drifts:
        logger.warning(
            "credit drift on %s: ledger %s, server %s, drift %s",
            drift.login,
            drift.ledger_credit,
            drift.server_credit,
            drift.drift,
        )
    return len(drifts)
