"""Activation under an `Idempotency-Key`: a lost 201 must not strand a press pass.

The first activation for (user_id, key) commits its `ActivationReplay` row first, without an
answer (the key is taken: "in progress"), runs the activation outside any transaction (its
gateway call must not hold one: see `assignment`), then stores the answer in that row (sealed
with the key, then under the keyring). A retry of the same request gets the same answer, link
included, while the link lives; a retry that arrives while the first still runs waits for its
answer, and one with another body or caller is refused at once (422). If the first fails, its
row goes and the retry runs the activation itself; a row left in progress by a process that
died is taken over once it is older than any activation can last. Without a key nothing
changes (`press_pass_activate`).
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from delivery.crypto import open_with_token, seal_with_token
from demo_pool.errors import IdempotencyKeyBusyError, IdempotencyKeyReusedError
from demo_pool.models import ActivationReplay

from .assignment import ActivationResult, press_pass_activate, rotation_lease_seconds

PURGE_BATCH = 100
_ANSWER_POLL_SECONDS = 0.05

# What the API answers for a result: (status code, body). The view owns the answer's shape.
Render = Callable[[ActivationResult], tuple[int, dict]]


@dataclass(frozen=True)
class ActivationAnswer:
    """An activation's answer as sent: the first one, or its replay."""

    status_code: int
    body: dict
    replayed: bool = False


def replay_key_hash(*, user_id: str, key: str) -> str:
    """What the database keeps of an idempotency key: one hash per user and key."""
    return hashlib.sha256(f"demo_pool.activate\0{user_id}\0{key}".encode()).hexdigest()


def _request_hash(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _seal_aad(key_hash: str) -> str:
    return f"demo_pool.activation_replay:{key_hash}"


@sensitive_variables()
def _replayed(replay: ActivationReplay, *, key: str) -> ActivationAnswer:
    # Only an answered replay is replayed: it has both.
    assert replay.answer is not None and replay.status_code is not None
    body = open_with_token(replay.answer, token=key, aad=_seal_aad(replay.key_hash))
    return ActivationAnswer(replay.status_code, json.loads(body), replayed=True)


def _longest_activation() -> timedelta:
    """Longer than an activation can run: a claim, a wait for a resend's rotation, the
    password change. An unanswered row older than this was left by a process that died."""
    return timedelta(seconds=2 * rotation_lease_seconds() + 60)


def _answer_wait() -> None:
    """One pause of a retry waiting for the first request's answer."""
    time.sleep(_ANSWER_POLL_SECONDS)


def _open_or_wait(*, key_hash: str, fields: dict, actor) -> tuple[ActivationReplay, bool]:
    """This request's new row (no answer yet), committed, and True; or the answered row of the
    first request with this key, once it answered, and False. 422 at once for another body
    or caller; 409 `idempotency_key_busy` if the key changed hands three times in a moment,
    or the first has not answered within the rotation lease (retry)."""
    caller_id = getattr(actor, "pk", None)
    request_hash = _request_hash(fields)
    # A retry waits about as long as the first's password change may take, then says "busy,
    # retry" rather than hold its request open for as long as the first's row may live.
    patience = time.monotonic() + rotation_lease_seconds()
    handed_over = 0
    while handed_over < 3:
        now = timezone.now()
        row = {
            "key_hash": key_hash,
            "user_id": fields["user_id"],
            "caller_id": caller_id,
            "request_hash": request_hash,
            "created_at": now,
            "expires_at": now + _longest_activation(),  # set with the answer
        }
        try:
            with transaction.atomic():
                return ActivationReplay.objects.create(**row), True
        except IntegrityError:
            pass  # the key is taken
        found = ActivationReplay.objects.filter(key_hash=key_hash).first()
        if found is None:
            handed_over += 1  # purged or failed meanwhile: insert again
            continue
        if found.expires_at <= now:
            # Its link is dead (or, unanswered, its process died): this request starts afresh.
            ActivationReplay.objects.filter(pk=found.pk, expires_at=found.expires_at).delete()
            handed_over += 1
            continue
        if found.request_hash != request_hash or found.caller_id != caller_id:
            raise IdempotencyKeyReusedError()
        if found.status_code is not None:
            return found, False
        if time.monotonic() >= patience:
            break
        _answer_wait()  # the first still runs
    raise IdempotencyKeyBusyError()


def _purge_expired(now) -> None:
    """Drop a bounded batch of expired replays (unanswered rows expire only once no
    activation can still be running for them)."""
    due = list(
        ActivationReplay.objects.filter(expires_at__lte=now)
        .order_by("expires_at", "pk")
        .values_list("pk", flat=True)[:PURGE_BATCH]
    )
    if due:
        ActivationReplay.objects.filter(pk__in=due, expires_at__lte=now).delete()


@sensitive_variables()
def press_pass_activate_once(
    *,
    idempotency_key: str,
    render: Render,
    user_id: str,
    real_name: str,
    delivery_method: str,
    contact_info: str = "",
    actor=None,
) -> ActivationAnswer:
    """`press_pass_activate`, answered once per (user_id, key): a retry of the same request
    replays the first answer while its link lives; another request with the key is 422."""
    fields = {
        "user_id": user_id,
        "real_name": real_name,
        "delivery_method": delivery_method,
        "contact_info": contact_info,
    }
    key_hash = replay_key_hash(user_id=user_id, key=idempotency_key)
    now = timezone.now()
    _purge_expired(now)  # first: a refused activation purges too
    replay, mine = _open_or_wait(key_hash=key_hash, fields=fields, actor=actor)
    if not mine:
        return _replayed(replay, key=idempotency_key)
    try:
        result = press_pass_activate(**fields, actor=actor)
        status_code, body = render(result)
    except BaseException:
        ActivationReplay.objects.filter(pk=replay.pk, status_code__isnull=True).delete()
        raise
    if result.delivery is not None:
        replay.expires_at = result.delivery.delivery.expires_at
        replay.press_pass = result.press_pass
    else:  # queued: its status URL answers from now on; replay it as long as a link lives
        replay.expires_at = now + timedelta(minutes=settings.DELIVERY_LINK_TTL_MINUTES)
    replay.status_code = status_code
    plaintext = json.dumps(body, cls=DjangoJSONEncoder).encode()
    replay.answer = seal_with_token(plaintext, token=idempotency_key, aad=_seal_aad(key_hash))
    replay.save(update_fields=["expires_at", "press_pass", "status_code", "answer"])
    return ActivationAnswer(status_code, body)
