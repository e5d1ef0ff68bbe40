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
from django.db.models import Exists, F, Min, OuterRef, Q
from django.utils import timezone

from accounts.services import audit_record_many, in_threads, threads_for
from bonuses.models import Bonus, CreditIntent, LeverageState
from bonuses.types import bonus_kind
from core.money import ZERO
from gateways.errors import GatewayError, PermanentGatewayError
from gateways.mt5 import get_mt5_gateway

from .common import (
    ACCOUNTS_PER_TRANSACTION,
    atomic_for,
    audit_bonus,
    bonus_event,
    bonus_state,
    lock_accounts,
    logger,
    read_account,
)

OPEN = (CreditIntent.Status.PENDING, CreditIntent.Status.UNKNOWN)
# A sender that crashed mid-call frees its intent after this. It must outlast any gateway
# call, or a second sender could look a write up before the first one's lands.
MIN_CLAIM_LEASE = timedelta(minutes=2)
# Writes that leave a deal carrying the op id in its comment (set_leverage leaves none).
DEAL_KINDS = (
    CreditIntent.Kind.CREDIT_IN,
    CreditIntent.Kind.CREDIT_OUT,
    CreditIntent.Kind.BALANCE_IN,
    CreditIntent.Kind.CLOSE_POSITIONS,
)
ABANDONED = "abandoned: an earlier write of this operation failed"
# Writes `operations_execute_many` sends many at once when each is its operation's only one:
# a grant's credit, and the leverage a grant sets.
BATCHED_KINDS = (CreditIntent.Kind.CREDIT_IN, CreditIntent.Kind.SET_LEVERAGE)


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
    intent = intent_build(
        login=login,
        kind=kind,
        operation=operation,
        bonus=bonus,
        amount=amount,
        leverage=leverage,
        reason=reason,
    )
    intent.save(force_insert=True)
    return intent


def intent_build(
    *,
    login: int,
    kind: str,
    operation: uuid.UUID,
    bonus: Bonus | None = None,
    amount: Decimal | None = None,
    leverage: int | None = None,
    reason: str = "",
) -> CreditIntent:
    """`intent_add`'s row, not saved yet (for a `bulk_create` of many)."""
    if amount is not None and amount <= 0:
        raise ValueError(f"an intent moves a positive amount, not {amount}")
    return CreditIntent(
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
    activated: dict[str, set[int]] = {}
    for index, intent in enumerate(intents):
        if intent.status in OPEN:
            if intent.kind == CreditIntent.Kind.BALANCE_IN and failed_before:
                intent = _settle(intent, CreditIntent.Status.FAILED, error=ABANDONED)
            else:
                intent = intent_execute(intent.pk)
                bonus_type = _activated_type(intent)
                if bonus_type is not None:
                    activated.setdefault(bonus_type, set()).add(intent.login)
            intents[index] = intent
        if intent.status == CreditIntent.Status.FAILED:
            failed_before = True
        elif intent.status != CreditIntent.Status.DONE:
            if intent.status == CreditIntent.Status.UNKNOWN:
                _resolve_soon(operation, intent)
            break  # outcome not known yet: the rest waits, in order, for the resolver
    _after_activation(activated, together=False)
    return intents


def intent_execute(intent_id: int) -> CreditIntent:
    """Claim one write, look it up if it may have been sent, else send it; record the outcome."""
    claimed = _claim(CreditIntent(pk=intent_id))
    intent = CreditIntent.objects.get(pk=intent_id)
    if not claimed:
        return intent  # settled already, or someone else is sending it right now
    maybe_sent = intent.attempts > 1 or intent.status == CreditIntent.Status.UNKNOWN
    gateway = get_mt5_gateway()
    try:
        if intent.kind == CreditIntent.Kind.SET_LEVERAGE and _superseded(intent):
            return _settle(
                intent, CreditIntent.Status.FAILED, error="superseded by a later leverage change"
            )
        if maybe_sent and intent.kind == CreditIntent.Kind.CLOSE_POSITIONS:
            return _close_again(gateway, intent)
        if maybe_sent and intent.kind in DEAL_KINDS:
            deal = gateway.find_deal_by_comment(intent.login, intent.op_id)
            if deal is not None:
                return _settle(intent, CreditIntent.Status.DONE, deal_id=deal.ticket)
        deal_id = _send(gateway, intent)
    except PermanentGatewayError as exc:
        if intent.kind == CreditIntent.Kind.CREDIT_OUT and exc.code == "insufficient_credit":
            return _shrink_credit_out(intent, exc)
        return _settle(intent, CreditIntent.Status.FAILED, error=_describe(exc))
    except GatewayError as exc:
        # A timeout or a lost answer may hide a write that happened: look before resending.
        return _settle(intent, CreditIntent.Status.UNKNOWN, error=_describe(exc))
    return _settle(intent, CreditIntent.Status.DONE, deal_id=deal_id)


def operations_execute_many(operations: list[uuid.UUID]) -> None:
    """`operation_execute` for many operations, as if one after the other, in far fewer
    queries; never call it inside a transaction.

    An operation that is one fresh credit-in or leverage write (a grant's) is sent this way:
    on `MONITOR_DISPATCH_THREADS` threads (each its own MT5 session), each write claimed just
    before it is sent, and only if nobody ever touched it (so it cannot have been sent, and no
    claim runs out while it waits its turn); then all the outcomes settled in one transaction,
    the outcomes `intent_execute` gives (an error that is not a refusal leaves the write
    unknown, looked up before anything is resent). A write someone else took is theirs to
    finish. Every other operation goes through `operation_execute`. Then each type whose
    bonuses became active is told so, for all its accounts at once (Type A syncs leverage).
    """
    if not operations:
        return
    by_operation: dict[uuid.UUID, list[CreditIntent]] = {}
    for intent in CreditIntent.objects.filter(operation__in=list(operations)).order_by("pk"):
        by_operation.setdefault(intent.operation, []).append(intent)
    fresh = [
        intents[0]
        for intents in by_operation.values()
        if len(intents) == 1
        and intents[0].kind in BATCHED_KINDS
        and intents[0].status == CreditIntent.Status.PENDING
        and intents[0].attempts == 0
    ]
    fresh_ops = {intent.operation for intent in fresh}
    for operation in by_operation:
        if operation not in fresh_ops:
            operation_execute(operation)
    gateway = get_mt5_gateway()

    def send(intent: CreditIntent):
        # A leverage write is claimed only while no later one of its login exists, judged in
        # the claim itself, just before it is sent (as `intent_execute` does): a batch takes
        # a while to send, and a later write made meanwhile (an override, a withdrawal) must
        # not be undone by this stale one landing after it.
        try:
            if _claim_untouched(
                intent, unless_superseded=intent.kind == CreditIntent.Kind.SET_LEVERAGE
            ):
                return _send_outcome(gateway, intent)
            if intent.kind == CreditIntent.Kind.SET_LEVERAGE and _claim_untouched(intent):
                return (
                    intent,
                    CreditIntent.Status.FAILED,
                    None,
                    "superseded by a later leverage change",
                )
        except Exception:
            # The claim itself failed (the database): nothing was sent; whatever the claim
            # left is the resolver's. The other writes' outcomes must not be lost with it.
            logger.exception("credit intent %s: could not be claimed", intent.op_id)
        return None  # someone else took it (a resolver): theirs to finish

    threads = threads_for(settings.MONITOR_DISPATCH_THREADS, len(fresh))
    outcomes = [outcome for outcome in in_threads(fresh, send, threads) if outcome is not None]
    activated, error = _settle_many(outcomes)
    for intent, status, _, _ in outcomes:
        if status == CreditIntent.Status.UNKNOWN:
            _resolve_soon(intent.operation, intent)
    _after_activation(activated, together=True)
    if error is not None:
        raise error


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


def _claim_untouched(intent: CreditIntent, *, unless_superseded: bool = False) -> bool:
    """Claim a write nobody has claimed yet (pending, never attempted): one conditional
    UPDATE. Claimed this way, it cannot have been sent before. `unless_superseded`: a
    leverage write is not claimed if a later leverage write of its login exists."""
    now = timezone.now()
    untouched = CreditIntent.objects.filter(
        pk=intent.pk, status=CreditIntent.Status.PENDING, attempts=0, claimed_until__isnull=True
    )
    if unless_superseded:
        later = CreditIntent.objects.filter(
            login=OuterRef("login"), kind=CreditIntent.Kind.SET_LEVERAGE, pk__gt=OuterRef("pk")
        )
        untouched = untouched.filter(~Exists(later))
    claimed = untouched.update(claimed_until=now + claim_lease(), attempts=1)
    if claimed:
        intent.attempts = 1
    return claimed == 1


def _claim(intent: CreditIntent) -> bool:
    """Take the write for this sender (open, and no live claim of another): one conditional
    UPDATE, so that one sender at a time holds it."""
    now = timezone.now()
    claimed = (
        CreditIntent.objects.filter(pk=intent.pk, status__in=OPEN)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + claim_lease(), attempts=F("attempts") + 1)
    )
    return claimed == 1


def _send_outcome(gateway, intent: CreditIntent) -> tuple[CreditIntent, str, int | None, str]:
    """Send one just-claimed write that was never sent before (a first attempt of a pending
    write); what came of it, as `intent_execute` judges it."""
    try:
        deal_id = _send(gateway, intent)
    except PermanentGatewayError as exc:
        return intent, CreditIntent.Status.FAILED, None, _describe(exc)
    except Exception as exc:
        # A timeout, a lost answer, or a fault reading the answer: look before resending.
        error = _describe(exc) if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, GatewayError):
            logger.exception("credit intent %s: unexpected error while sending", intent.op_id)
        return intent, CreditIntent.Status.UNKNOWN, None, error
    return intent, CreditIntent.Status.DONE, deal_id, ""


def _settle_many(
    outcomes: list[tuple[CreditIntent, str, int | None, str]],
) -> tuple[dict[str, set[int]], Exception | None]:
    """`_settle` for many credit-in and leverage outcomes, `ACCOUNTS_PER_TRANSACTION` a
    transaction; the logins whose bonus became active, by bonus type, and the first error.

    A part that fails rolls back alone (its writes stay claimed: the resolver looks them up
    once the claims end); the parts after it still settle, and those before it keep what
    they committed, so the caller still tells their types (Type A's leverage) before raising."""
    activated: dict[str, set[int]] = {}
    error: Exception | None = None
    for start in range(0, len(outcomes), ACCOUNTS_PER_TRANSACTION):
        part = outcomes[start : start + ACCOUNTS_PER_TRANSACTION]
        try:
            for bonus_type, logins in _settle_part(part).items():
                activated.setdefault(bonus_type, set()).update(logins)
        except Exception as exc:
            logger.exception("settling %s credit outcomes failed", len(part))
            error = error or exc
    return activated, error


def _settle_part(
    outcomes: list[tuple[CreditIntent, str, int | None, str]],
) -> dict[str, set[int]]:
    now = timezone.now()
    activated: dict[str, set[int]] = {}
    with transaction.atomic():
        lock_accounts(intent.login for intent, *_ in outcomes)
        still_open = set(
            CreditIntent.objects.select_for_update()
            .filter(pk__in=[intent.pk for intent, *_ in outcomes], status__in=OPEN)
            .values_list("pk", flat=True)
        )
        settled = []
        for intent, status, deal_id, error in outcomes:
            if intent.pk in still_open:
                intent.status, intent.deal_id = status, deal_id
                intent.last_error, intent.claimed_until = error[:2000], None
                settled.append(intent)
        CreditIntent.objects.bulk_update(
            settled, ["status", "deal_id", "last_error", "claimed_until"]
        )
        applied: dict[int, list[int]] = {}
        for intent in settled:
            if (
                intent.kind == CreditIntent.Kind.SET_LEVERAGE
                and intent.status == CreditIntent.Status.DONE
            ):
                assert intent.leverage is not None  # a leverage write carries its leverage
                applied.setdefault(intent.leverage, []).append(intent.login)
        for leverage, logins in applied.items():
            LeverageState.objects.filter(login__in=logins).update(applied_leverage=leverage)
        final = {
            intent.bonus_id: (intent, error)
            for intent, status, _, error in outcomes
            if intent.pk in still_open
            and status in (CreditIntent.Status.DONE, CreditIntent.Status.FAILED)
            and intent.bonus_id
        }
        bonuses = list(
            Bonus.objects.select_for_update()
            .filter(pk__in=list(final), status=Bonus.Status.PENDING)
            .order_by("pk")
        )
        events = []
        for bonus in bonuses:
            intent, error = final[bonus.pk]
            before = bonus_state(bonus)
            bonus.updated_at = now
            if intent.status == CreditIntent.Status.DONE:
                assert intent.amount is not None  # a bonus's batched write is its credit-in
                bonus.status, bonus.credit_remaining = Bonus.Status.ACTIVE, intent.amount
                reason = "credit posted"
                events.append(
                    bonus_event(verb="activated", bonus=bonus, before=before, reason=reason)
                )
                activated.setdefault(bonus.bonus_type, set()).add(bonus.login)
            else:
                bonus.status, bonus.credit_remaining = Bonus.Status.FAILED, ZERO
                bonus.ended_at, bonus.cancel_reason = now, "credit refused by the server"
                events.append(bonus_event(verb="failed", bonus=bonus, before=before, reason=error))
        Bonus.objects.bulk_update(
            bonuses, ["status", "credit_remaining", "ended_at", "cancel_reason", "updated_at"]
        )
        audit_record_many(events)
    return activated


def _send(gateway, intent: CreditIntent) -> int | None:
    comment = intent.op_id
    if intent.kind == CreditIntent.Kind.CREDIT_IN:
        return gateway.post_credit(intent.login, intent.amount, comment=comment)
    if intent.kind == CreditIntent.Kind.CREDIT_OUT:
        assert intent.amount is not None  # a credit write carries its amount
        return gateway.post_credit(intent.login, -intent.amount, comment=comment)
    if intent.kind == CreditIntent.Kind.BALANCE_IN:
        return gateway.post_balance(intent.login, intent.amount, comment=comment)
    if intent.kind == CreditIntent.Kind.SET_LEVERAGE:
        gateway.set_leverage(intent.login, intent.leverage)
        return None
    if intent.kind == CreditIntent.Kind.CLOSE_POSITIONS:
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
    return _settle(intent, CreditIntent.Status.DONE, deal_id=max(deals) if deals else None)


def _superseded(intent: CreditIntent) -> bool:
    # A stale leverage write sent late would undo a newer one: only the latest is sent.
    return CreditIntent.objects.filter(
        login=intent.login, kind=CreditIntent.Kind.SET_LEVERAGE, pk__gt=intent.pk
    ).exists()


def _shrink_credit_out(intent: CreditIntent, exc: PermanentGatewayError) -> CreditIntent:
    """The server holds less credit than this removal: take what is there, never more.

    A conversion's credit-out is not shrunk (its balance-in must match it): it fails, and
    the balance-in is abandoned.
    """
    if CreditIntent.objects.filter(
        operation=intent.operation, kind=CreditIntent.Kind.BALANCE_IN
    ).exists():
        return _settle(intent, CreditIntent.Status.FAILED, error=_describe(exc))
    try:
        account = read_account(intent.login)
    except GatewayError as read_exc:
        return _settle(
            intent, CreditIntent.Status.UNKNOWN, error=f"{_describe(exc)}; {_describe(read_exc)}"
        )
    available = account.credit if account is not None else ZERO
    assert intent.amount is not None  # a credit-out carries its amount
    if available <= 0 or available >= intent.amount:
        return _settle(
            intent, CreditIntent.Status.FAILED, error=f"{_describe(exc)}; server credit {available}"
        )
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
        if settled and status in (CreditIntent.Status.DONE, CreditIntent.Status.FAILED):
            intent.status = status
            _apply_outcome(intent, error)
    intent.refresh_from_db()
    return intent


def _apply_outcome(intent: CreditIntent, error: str) -> None:
    if intent.kind == CreditIntent.Kind.SET_LEVERAGE and intent.status == CreditIntent.Status.DONE:
        LeverageState.objects.filter(login=intent.login).update(applied_leverage=intent.leverage)
        return
    if intent.kind != CreditIntent.Kind.CREDIT_IN or intent.bonus_id is None:
        return
    bonus = Bonus.objects.select_for_update().get(pk=intent.bonus_id)
    if bonus.status != Bonus.Status.PENDING:
        return
    before = bonus_state(bonus)
    if intent.status == CreditIntent.Status.DONE:
        bonus.status = Bonus.Status.ACTIVE
        assert intent.amount is not None  # a credit-in carries its amount
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


def _activated_type(intent: CreditIntent) -> str | None:
    """The type of the bonus this write made active, or None."""
    if (
        intent.kind != CreditIntent.Kind.CREDIT_IN
        or intent.status != CreditIntent.Status.DONE
        or intent.bonus_id is None
    ):
        return None
    return (
        Bonus.objects.filter(pk=intent.bonus_id, status=Bonus.Status.ACTIVE)
        .values_list("bonus_type", flat=True)
        .first()
    )


def _after_activation(activated: dict[str, set[int]], *, together: bool) -> None:
    """Tell each type which accounts' bonuses of it became active (Type A syncs leverage)."""
    for bonus_type in sorted(activated):
        bonus_kind(bonus_type).after_activation(logins=activated[bonus_type], together=together)


def _describe(exc: GatewayError) -> str:
    code = f" [{exc.code}]" if getattr(exc, "code", "") else ""
    return f"{type(exc).__name__}{code}: {exc}"
