"""Activation under an `Idempotency-Key`: a lost 201 must not strand a press pass.

The first activation for (user_id, key) runs in one transaction with its `ActivationReplay`
row, and that row keeps its answer (sealed with the key, then under the keyring). A retry of
the same request gets the same answer, link included, while the link lives; a retry that
arrives while the first still runs waits for it: its insert of the same `key_hash` blocks on
the unique index until the first commits (PostgreSQL), or its IMMEDIATE transaction waits for
the writer (SQLite), and it then replays what the first answered. If the first fails, it
leaves no row and the retry runs the activation itself. Without a key nothing changes
(`press_pass_activate`).

With a key the claim commits with the answer rather than before the gateway call: the
claimed account stays row-locked (other claimers skip it) until the hand-over is done.
"""

import hashlib
import json
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

from .assignment import ActivationResult, press_pass_activate

PURGE_BATCH = 100

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
    body = open_with_token(replay.answer, token=key, aad=_seal_aad(replay.key_hash))
    return ActivationAnswer(replay.status_code, json.loads(body), replayed=True)


def _open_or_wait(*, key_hash: str, fields: dict, actor, now) -> ActivationReplay:
    """Inside the caller's transaction: this request's new row (status_code None), or the
    live row of the first request with this key, once that one committed."""
    row = {
        "key_hash": key_hash,
        "user_id": fields["user_id"],
        "caller": actor if getattr(actor, "pk", None) else None,
        "request_hash": _request_hash(fields),
        "created_at": now,
        "expires_at": now,  # set with the answer
    }
    for _ in range(3):
        try:
            with transaction.atomic():  # a savepoint: a duplicate key must not end the transaction
                return ActivationReplay.objects.create(**row)
        except IntegrityError:
            pass  # a first request with this key committed (PostgreSQL waited for it)
        found = ActivationReplay.objects.select_for_update().filter(key_hash=key_hash).first()
        if found is None:
            continue  # purged meanwhile: insert again
        if found.expires_at > now:
            return found
        found.delete()  # its link is dead: this request starts afresh
    raise IdempotencyKeyBusyError()  # the key changed hands three times in a moment


def _purge_expired(now) -> None:
    """Drop a bounded batch of expired replays, skipping rows another request holds."""
    with transaction.atomic():
        due = list(
            ActivationReplay.objects.select_for_update(skip_locked=True)
            .filter(expires_at__lte=now)
            .order_by("expires_at", "pk")
            .values_list("pk", flat=True)[:PURGE_BATCH]
        )
        if due:
            ActivationReplay.objects.filter(pk__in=due).delete()


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
    _purge_expired(now)  # first, in its own transaction: a refused activation purges too
    with transaction.atomic():
        replay = _open_or_wait(key_hash=key_hash, fields=fields, actor=actor, now=now)
        if replay.status_code is not None:
            caller_id = getattr(actor, "pk", None)
            if replay.request_hash != _request_hash(fields) or replay.caller_id != caller_id:
                raise IdempotencyKeyReusedError()
            return _replayed(replay, key=idempotency_key)
        result = press_pass_activate(**fields, actor=actor)
        status_code, body = render(result)
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
