"""The credit ledger: every MT5 write is a `CreditIntent` row first, sent after its commit.

How one write is sent (`intent_execute`), outside any transaction:

1. Claim it with a conditional UPDATE (status pending/unknown, no live claim): only one
   sender at a time, whether the service that made it or the beat resolver.
2. If it may have been sent before (an earlier attempt, or status unknown), look its op id
   up in the account's deal history first: found means done, with that deal. A close of
   positions is sent again instead: it closes only what is still open (its deal proves one
   position closed, not all).
3. Otherwise send it, the op id as the deal comment. An answer: done with the deal id. A
   `PermanentGatewayError`: failed. Any other gateway error (a timeout, a 5xx, a lost answer):
   unknown, so that nothing is sent again before the look-up of step 2.

An operation's writes (a conversion's credit-out and balance-in; a drawdown's close and
credit-outs) are sent in creation order; a write whose outcome is not known yet stops the
operation until it is resolved: a few seconds later by `bonuses.resolve_operation`, queued
when the outcome became unknown (`BONUS_RESOLVE_SOON_SECONDS`, doubling, for
`BONUS_RESOLVE_SOON_ATTEMPTS` attempts), and in any case by `intents_resolve` (beat, every
minute), so a lost answer delays a client's credit by seconds, not by the beat's minute.
A balance-in is never sent after an earlier write of its operation failed: it is abandoned
(failed) instead, so no balance is paid for credit that was not taken back.
"""

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from bonuses.models import Bonus, CreditIntent, LeverageState
from gateways.errors import GatewayError, PermanentGatewayError
from gateways.mt5 import get_mt5_gateway

from .common import ZERO, atomic_for, audit_bonus, bonus_state, logger, read_account

Kind = CreditIntent.Kind
Status = CreditIntent.Status
OPEN = (Status.PENDING, Status.UNKNOWN)
# A sender that crashed mid-call frees its intent after this. It must outlast any gateway
# call, or a second sender could look a write up before the first one's lands.
MIN_CLAIM_LEASE = timedelta(minutes=2)
# Writes that leave a deal carrying the op id in its comment (set_leverage leaves none).
DEAL_KINDS = (Kind.CREDIT_IN, Kind.CREDIT_OUT, Kind.BALANCE_IN, Kind.CLOSE_POSITIONS)
ABANDONED = "abandoned: an earlier write of this operation failed"


def new_operation() -> uuid.UUID:
    """A fresh operation id, grouping the writes that complete together."""
    return uuid.uuid4()


def intent_add(
    *,
    login: int,
    kind: str,
    operation: uuid.UUID,
    bonus: Bonus | None = None,
    amount: Decimal | None = None,
    leverage: int | None = None,
    reason: str = "",
) -> CreditIntent:
    """Record one MT5 write in the caller's transaction; `operation_execute` sends it later."""
    if amount is not None and amount <= 0:
        raise ValueError(f"an intent moves a positive amount, not {amount}")
    return CreditIntent.objects.create(
        op_id=CreditIntent.new_op_id(),
        operation=operation,
        login=login,
        bonus=bonus,
        kind=kind,
        amount=amount,
        leverage=leverage,
        reason=reason[:64],
    )


def operation_execute(operation: uuid.UUID) -> list[CreditIntent]:
    """Send the operation's open writes in order; never call it inside a transaction."""
    intents = list(CreditIntent.objects.filter(operation=operation).order_by("pk"))
    failed_before = False
    activated_type_a: set[int] = set()
    for index, intent in enumerate(intents):
        if intent.status in OPEN:
            if intent.kind == Kind.BALANCE_IN and failed_before:
                intent = _settle(intent, Status.FAILED, error=ABANDONED)
            else:
                intent = intent_execute(intent.pk)
                if _activated_type_a(intent):
                    activated_type_a.add(intent.login)
            intents[index] = intent
        if intent.status == Status.FAILED:
            failed_before = True
        elif intent.status != Status.DONE:
            if intent.status == Status.UNKNOWN:
                _resolve_soon(operation, intent)
            break  # outcome not known yet: the rest waits, in order, for the resolver
    if activated_type_a:
        from .leverage import leverage_sync

        for login in sorted(activated_type_a):
            leverage_sync(login=login, reason="grant")
    return intents


def intent_execute(intent_id: int) -> CreditIntent:
    """Claim one write, look it up if it may have been sent, else send it; record the outcome."""
    now = timezone.now()
    claimed = (
        CreditIntent.objects.filter(pk=intent_id, status__in=OPEN)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + claim_lease(), attempts=F("attempts") + 1)
    )
    intent = CreditIntent.objects.get(pk=intent_id)
    if not claimed:
        return intent  # settled already, or someone else is sending it right now
    maybe_sent = intent.attempts > 1 or intent.status == Status.UNKNOWN
    gateway = get_mt5_gateway()
    try:
        if intent.kind == Kind.SET_LEVERAGE and _superseded(intent):
            return _settle(intent, Status.FAILED, error="superseded by a later leverage change")
        if maybe_sent and intent.kind == Kind.CLOSE_POSITIONS:
            return _close_again(gateway, intent)
        if maybe_sent and intent.kind in DEAL_KINDS:
            deal = gateway.find_deal_by_comment(intent.login, intent.op_id)
            if deal is not None:
                return _settle(intent, Status.DONE, deal_id=deal.ticket)
        deal_id = _send(gateway, intent)
    except PermanentGatewayError as exc:
        if intent.kind == Kind.CREDIT_OUT and exc.code == "insufficient_credit":
            return _shrink_credit_out(intent, exc)
        return _settle(intent, Status.FAILED, error=_describe(exc))
    except GatewayError as exc:
        # A timeout or a lost answer may hide a write that happened: look before resending.
        return _settle(intent, Status.UNKNOWN, error=_describe(exc))
    return _settle(intent, Status.DONE, deal_id=deal_id)


def intents_resolve(*, limit: int = 200) -> dict[str, int]:
    """Finish the operations with writes still pending or unknown (beat, every minute)."""
    now = timezone.now()
    operations = (
        CreditIntent.objects.filter(status__in=OPEN)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .values("operation")
        .annotate(first=Min("pk"))
        .order_by("first")
        .values_list("operation", flat=True)[:limit]
    )
    counts: Counter[str] = Counter()
    for operation in list(operations):
        counts["operations"] += 1
        try:
            intents = operation_execute(operation)
        except Exception:
            # One broken operation must not stop the others; it stays open for the next run.
            logger.exception("resolving credit operation %s failed", operation)
            counts["errors"] += 1
            continue
        for intent in intents:
            counts[intent.status] += 1
    return {
        key: counts[key] for key in ("operations", "done", "failed", "unknown", "pending", "errors")
    }


# --- Internals -------------------------------------------------------------------------------


def _resolve_soon(operation: uuid.UUID, intent: CreditIntent) -> None:
    """Queue one more look at an unknown write after a short, doubling delay (never raises:
    the beat resolver comes back anyway)."""
    attempts = max(1, intent.attempts)
    if attempts > settings.BONUS_RESOLVE_SOON_ATTEMPTS:
        return
    delay = settings.BONUS_RESOLVE_SOON_SECONDS * 2 ** (attempts - 1)

    def send() -> None:
        from bonuses import tasks

        try:
            tasks.resolve_operation.apply_async(args=[str(operation)], countdown=delay)
        except Exception:
            logger.exception("could not queue the resolution of operation %s", operation)

    transaction.on_commit(send)


def claim_lease() -> timedelta:
    """How long a sender owns an intent: at least 4 gateway timeouts, at least 2 minutes."""
    timeout = float(getattr(settings, "MT5_REQUEST_TIMEOUT_SECONDS", 30) or 30)
    return max(MIN_CLAIM_LEASE, timedelta(seconds=4 * timeout))


def _send(gateway, intent: CreditIntent) -> int | None:
    comment = intent.op_id
    if intent.kind == Kind.CREDIT_IN:
        return gateway.post_credit(intent.login, intent.amount, comment=comment)
    if intent.kind == Kind.CREDIT_OUT:
        return gateway.post_credit(intent.login, -intent.amount, comment=comment)
    if intent.kind == Kind.BALANCE_IN:
        return gateway.post_balance(intent.login, intent.amount, comment=comment)
    if intent.kind == Kind.SET_LEVERAGE:
        gateway.set_leverage(intent.login, intent.leverage)
        return None
    if intent.kind == Kind.CLOSE_POSITIONS:
        tickets = gateway.close_positions(intent.login, comment=comment)
        return max(tickets) if tickets else None
    raise ValueError(f"unknown intent kind {intent.kind!r}")


def _close_again(gateway, intent: CreditIntent) -> CreditIntent:
    """Finish a close that may have been sent. A close is of every open position, one dealer
    request each (the Web API): a deal carrying the op id proves that one closed, not all.
    Closing again closes only what is still open; a position that closed under the second
    request (the first one's, queued) is no refusal once none is left open."""
    found = gateway.find_deal_by_comment(intent.login, intent.op_id)
    try:
        tickets = gateway.close_positions(intent.login, comment=intent.op_id)
    except PermanentGatewayError as exc:
        if exc.code != "close_rejected" or gateway.get_positions([intent.login]):
            raise
        tickets = []
    deals = [*tickets, *([found.ticket] if found is not None else [])]
    return _settle(intent, Status.DONE, deal_id=max(deals) if deals else None)


def _superseded(intent: CreditIntent) -> bool:
    # A stale leverage write sent late would undo a newer one: only the latest is sent.
    return CreditIntent.objects.filter(
        login=intent.login, kind=Kind.SET_LEVERAGE, pk__gt=intent.pk
    ).exists()


def _shrink_credit_out(intent: CreditIntent, exc: PermanentGatewayError) -> CreditIntent:
    """The server holds less credit than this removal: take what is there, never more.

    A conversion's credit-out is not shrunk (its balance-in must match it): it fails, and
    the balance-in is abandoned.
    """
    if CreditIntent.objects.filter(operation=intent.operation, kind=Kind.BALANCE_IN).exists():
        return _settle(intent, Status.FAILED, error=_describe(exc))
    try:
        account = read_account(intent.login)
    except GatewayError as read_exc:
        return _settle(intent, Status.UNKNOWN, error=f"{_describe(exc)}; {_describe(read_exc)}")
    available = account.credit if account is not None else ZERO
    if available <= 0 or available >= intent.amount:
        return _settle(intent, Status.FAILED, error=f"{_describe(exc)}; server credit {available}")
    note = f"server held {available} of {intent.amount}: removing {available}"
    CreditIntent.objects.filter(pk=intent.pk, status__in=OPEN).update(
        amount=available, last_error=note, claimed_until=None
    )
    logger.warning("credit intent %s: %s", intent.op_id, note)
    return intent_execute(intent.pk)


def _settle(
    intent: CreditIntent, status: str, *, deal_id: int | None = None, error: str = ""
) -> CreditIntent:
    """Record the outcome (only over an open intent) and what it means for its bonus."""
    with atomic_for(intent.login):
        settled = CreditIntent.objects.filter(pk=intent.pk, status__in=OPEN).update(
            status=status, deal_id=deal_id, last_error=error[:2000], claimed_until=None
        )
        if settled and status in (Status.DONE, Status.FAILED):
            intent.status = status
            _apply_outcome(intent, error)
    intent.refresh_from_db()
    return intent


def _apply_outcome(intent: CreditIntent, error: str) -> None:
    if intent.kind == Kind.SET_LEVERAGE and intent.status == Status.DONE:
        LeverageState.objects.filter(login=intent.login).update(applied_leverage=intent.leverage)
        return
    if intent.kind != Kind.CREDIT_IN or intent.bonus_id is None:
        return
    bonus = Bonus.objects.select_for_update().get(pk=intent.bonus_id)
    if bonus.status != Bonus.Status.PENDING:
        return
    before = bonus_state(bonus)
    if intent.status == Status.DONE:
        bonus.status = Bonus.Status.ACTIVE
        bonus.credit_remaining = intent.amount
        bonus.save(update_fields=["status", "credit_remaining", "updated_at"])
        audit_bonus(verb="activated", bonus=bonus, before=before, reason="credit posted")
    else:
        bonus.status = Bonus.Status.FAILED
        bonus.credit_remaining = ZERO
        bonus.ended_at = timezone.now()
        bonus.cancel_reason = "credit refused by the server"
        bonus.save(
            update_fields=["status", "credit_remaining", "ended_at", "cancel_reason", "updated_at"]
        )
        audit_bonus(verb="failed", bonus=bonus, before=before, reason=error)


def _activated_type_a(intent: CreditIntent) -> bool:
    if intent.kind != Kind.CREDIT_IN or intent.status != Status.DONE or intent.bonus_id is None:
        return False
    return Bonus.objects.filter(
        pk=intent.bonus_id, bonus_type="A", status=Bonus.Status.ACTIVE
    ).exists()


def _describe(exc: GatewayError) -> str:
    code = f" [{exc.code}]" if getattr(exc, "code", "") else ""
    return f"{type(exc).__name__}{code}: {exc}"
