"""Assignment: a press pass claims one available account, gets a fresh password through the
gateway and hands it to `delivery`. When the pool is empty the activation waits as a queued
`ActivationRequest`, completed (and delivered) as soon as an account is provisioned.

The claim (`FOR UPDATE SKIP LOCKED`, then a conditional UPDATE) and the new press pass are
one short transaction; on PostgreSQL one statement (`_CLAIM_AND_OPEN_SQL`). No two
activations ever get the same account, and a second pass for the user (409) undoes the claim.
The gateway call comes after that commits, outside any transaction, under the press pass's
rotation lease (opened with the pass, so a resend waits for the hand-over), which a resend
takes too: the server's password, the stored one and the last
link always agree. If the
hand-over fails, the claim is undone and the account goes back to the pool.
"""

import secrets
import string
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.services import audit_record
from delivery.services import DeliveryResult, delivery_create, delivery_resend
from demo_pool.errors import (
    ActivationQueuedError,
    CredentialsRotatingError,
    DemoServerUnavailableError,
    PressPassActiveError,
    PressPassNotFoundError,
)
from demo_pool.models import ActivationRequest, DemoAccount, PressPass
from gateways.demo import get_demo_gateway
from gateways.errors import GatewayError

from .common import enqueue_task, logger, pool_config_cached, refill_nudge

_SYMBOLS = "!#$%*+-=?@_"
_ROTATION_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ActivationResult:
    """Either a press pass and its delivery (201), or a queued request (202)."""

    press_pass: PressPass | None = None
    delivery: DeliveryResult | None = None
    request: ActivationRequest | None = None


def new_password() -> str:
    """16 characters with upper and lower case, digits and a symbol (MT5's policy)."""
    alphabet = string.ascii_letters + string.digits + _SYMBOLS
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(16))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(c in _SYMBOLS for c in candidate)
        ):
            return candidate


@dataclass(frozen=True)
class _Claim:
    account: DemoAccount
    press_pass: PressPass
    available_left: int  # counted no further than the `up_to` asked for


# One statement, one round trip: claim the oldest available account nobody else is claiming
# (unless the user waits in the queue: then nothing, and the queue's unique constraint answers
# 409), open the press pass on it (a second active pass for the user fails the whole
# statement: 409, nothing claimed), and count what stays available, no further than `up_to`
# (the count's snapshot still holds the claimed row, hence the - 1).
_CLAIM_AND_OPEN_SQL = """
WITH claimed AS (
    UPDATE {account} SET status = %(assigned)s, assigned_at = %(now)s, expires_at = %(expires_at)s
    WHERE id = (
        SELECT a.id FROM {account} a
        WHERE a.status = %(available)s AND NOT (%(unless_queued)s AND EXISTS (
            SELECT 1 FROM {request} r WHERE r.user_id = %(user_id)s AND r.status = ANY(%(open)s)
        ))
        ORDER BY a.created_at, a.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, row_key, login, server, balance, leverage, currency, status, created_at,
        available_at, assigned_at, expires_at
), opened AS (
    INSERT INTO {press_pass} (user_id, real_name, account_id, status, delivery_method,
        contact_info, was_queued, activated_at, expires_at, rotating_until)
    SELECT %(user_id)s, %(real_name)s, id, %(active)s, %(delivery_method)s, %(contact_info)s,
        %(was_queued)s, %(activated_at)s, %(expires_at)s, %(rotating_until)s
    FROM claimed
    RETURNING id
)
SELECT claimed.*, opened.id AS press_pass_id, (
    SELECT count(*) FROM (
        SELECT 1 FROM {account} WHERE status = %(available)s LIMIT %(up_to)s + 1
    ) AS counted
) - 1 AS available_left
FROM claimed, opened
"""


def _claim_and_open(
    *, user_id, real_name, method, contact, was_queued: bool, now, expires_at, up_to: int
) -> _Claim | None:
    """Assign the oldest available account to a new press pass for `user_id`, atomically; None
    when there is none to take, or (unless `was_queued`) the user waits in the queue.

    The pass is opened holding its rotation lease (`rotating_until`) for the hand-over: a
    resend that finds it active before its first password is set waits for the hand-over
    instead of rotating first (its link would stay live beside the hand-over's, or outlive an
    undone claim whose account went back to the pool).

    `IntegrityError` when the user has an active pass already: then nothing was claimed.
    """
    fields = {
        "user_id": user_id,
        "real_name": real_name,
        "delivery_method": method,
        "contact_info": contact,
        "was_queued": was_queued,
        "activated_at": now,
        "expires_at": expires_at,
        "rotating_until": timezone.now() + timedelta(seconds=rotation_lease_seconds()),
    }
    if connection.vendor != "postgresql":
        return _claim_and_open_portably(fields, unless_queued=not was_queued, up_to=up_to)
    sql = _CLAIM_AND_OPEN_SQL.format(
        account=DemoAccount._meta.db_table,
        request=ActivationRequest._meta.db_table,
        press_pass=PressPass._meta.db_table,
    )
    params = {
        "assigned": DemoAccount.Status.ASSIGNED,
        "available": DemoAccount.Status.AVAILABLE,
        "active": PressPass.Status.ACTIVE,
        "unless_queued": not was_queued,
        "open": list(ActivationRequest.OPEN),
        "now": now,
        "up_to": up_to,
        **fields,
    }
    statement = DemoAccount.objects.raw(sql, params)
    if connection.in_atomic_block:
        with transaction.atomic():  # a savepoint: a 409 must not break the caller's transaction
            account = next(iter(statement), None)
    else:
        account = next(iter(statement), None)  # autocommit: the statement is its transaction
    if account is None:
        return None
    row = {
        **fields,
        "id": account.press_pass_id,  # type: ignore[attr-defined]  # a column of the raw query
        "account_id": account.pk,
        "status": PressPass.Status.ACTIVE,
        "delivery_id": None,
        "expired_at": None,
    }
    columns = [field.attname for field in PressPass._meta.concrete_fields]
    press_pass = PressPass.from_db(connection.alias, columns, [row[name] for name in columns])
    press_pass.account = account
    return _Claim(account, press_pass, account.available_left)  # type: ignore[attr-defined]  # raw


def _claim_and_open_portably(fields: dict, *, unless_queued: bool, up_to: int) -> _Claim | None:
    """The same with the ORM, for SQLite (no row locks, one writer at a time): a select, then
    a conditional UPDATE that only one claimer can win."""
    user_id, now = fields["user_id"], fields["activated_at"]
    with transaction.atomic():
        waiting = ActivationRequest.objects.filter(
            user_id=user_id, status__in=ActivationRequest.OPEN
        )
        if unless_queued and waiting.exists():
            return None
        for _ in range(5):
            account = (
                DemoAccount.objects.select_for_update(skip_locked=True)
                .filter(status=DemoAccount.Status.AVAILABLE)
                .order_by("created_at", "pk")
                .first()
            )
            if account is None:
                return None
            claimed = DemoAccount.objects.filter(
                pk=account.pk, status=DemoAccount.Status.AVAILABLE
            ).update(
                status=DemoAccount.Status.ASSIGNED, assigned_at=now, expires_at=fields["expires_at"]
            )
            if claimed:
                account.status, account.assigned_at = DemoAccount.Status.ASSIGNED, now
                account.expires_at = fields["expires_at"]
                press_pass = PressPass.objects.create(account=account, **fields)
                left = DemoAccount.objects.filter(status=DemoAccount.Status.AVAILABLE)[
                    :up_to
                ].count()
                return _Claim(account, press_pass, left)
    return None


def _queue(*, user_id, real_name, method, contact, now) -> ActivationRequest:
    """Inside a transaction, nothing claimed: the activation waits for an account."""
    if PressPass.objects.filter(user_id=user_id, status=PressPass.Status.ACTIVE).exists():
        raise PressPassActiveError()
    try:
        request = ActivationRequest.objects.create(
            user_id=user_id,
            real_name=real_name,
            delivery_method=method,
            contact_info=contact,
            created_at=now,
        )
    except IntegrityError:
        raise ActivationQueuedError() from None  # the transaction rolls back: nothing was made
    refill_nudge()
    logger.info("press pass for %s queued: no account could be handed over now", user_id)
    return request


@sensitive_variables()
def _payload(account: DemoAccount, press_pass: PressPass, password: str) -> dict:
    return {
        "login": account.login,
        "password": password,
        "server": account.server,
        "balance": str(account.balance),
        "currency": account.currency,
        "leverage": account.leverage,
        "expires_at": press_pass.expires_at.isoformat(),
    }


def _unclaim(account: DemoAccount) -> None:
    """The account goes back to the pool, with its own expiry again."""
    days = pool_config_cached().account_expiry_days
    DemoAccount.objects.filter(pk=account.pk, status=DemoAccount.Status.ASSIGNED).update(
        status=DemoAccount.Status.AVAILABLE,
        assigned_at=None,
        expires_at=(account.available_at or timezone.now()) + timedelta(days=days),
    )


def _release(press_pass: PressPass, account: DemoAccount) -> None:
    """Undo a claim whose hand-over failed: the pass goes, the account returns to the pool."""
    with transaction.atomic():
        PressPass.objects.filter(pk=press_pass.pk).delete()
        _unclaim(account)


def rotation_lease_seconds() -> float:
    """Longer than any one password change can take: a call may wait for a pooled
    connection, shake hands again and then time out (`DEMO_REQUEST_TIMEOUT_SECONDS` each)."""
    return 4 * float(settings.DEMO_REQUEST_TIMEOUT_SECONDS)


def _rotation_wait() -> None:
    """One pause of a rotation waiting for another one of the same pass to finish."""
    time.sleep(_ROTATION_POLL_SECONDS)


def _lease_rotation(press_pass: PressPass, *, wait_seconds: float):
    """Take the pass's rotation lease (committed at once, so no transaction is open while the
    demo server is called), waiting up to `wait_seconds` for another rotation to finish:
    the lease's end, which is also its token. 404 if the pass is no longer active; 409
    `credentials_rotating` if the other rotation outlasts the wait."""
    deadline = time.monotonic() + wait_seconds
    lease = timedelta(seconds=rotation_lease_seconds())
    while True:
        now = timezone.now()
        until = now + lease
        mine = PressPass.objects.filter(pk=press_pass.pk, status=PressPass.Status.ACTIVE).filter(
            Q(rotating_until__isnull=True) | Q(rotating_until__lte=now)
        )
        if mine.update(rotating_until=until):
            return until
        if not PressPass.objects.filter(pk=press_pass.pk, status=PressPass.Status.ACTIVE).exists():
            raise PressPassNotFoundError()
        if time.monotonic() >= deadline:
            raise CredentialsRotatingError()
        _rotation_wait()


def _end_lease(press_pass: PressPass, until) -> None:
    PressPass.objects.filter(pk=press_pass.pk, rotating_until=until).update(rotating_until=None)


@sensitive_variables()
def _rotate_and_deliver(
    press_pass: PressPass,
    account: DemoAccount,
    *,
    method: str,
    contact: str,
    resend: bool,
    actor,
    wait_seconds: float = 0.0,
    until=None,
) -> DeliveryResult:
    """A fresh password set through the gateway, then stored encrypted, delivered (a resend
    supersedes the earlier links) and audited in one short transaction.

    Every rotation of a pass holds its lease (`PressPass.rotating_until`) from before the
    gateway call to that commit, so two never interleave: the server's password, the stored
    one and the last link come from the same rotation. No transaction is open during the
    call: the demo server may share our database (the stand-in on SQLite, whose one write
    lock a transaction here would hold), and a connection idle in a transaction for a
    network call's length is a PostgreSQL connection taken from everyone else.

    `until`: the lease is held already (the hand-over's, taken with the claim); else it is
    taken here, waiting up to `wait_seconds`.
    """
    if until is None:
        until = _lease_rotation(press_pass, wait_seconds=wait_seconds)
    try:
        password = new_password()
        try:
            assert account.login is not None  # a pass is on a provisioned account
            get_demo_gateway().change_password(account.login, password)
        except GatewayError as exc:
            logger.warning("demo account %s: password change failed: %s", account.login, exc)
            raise DemoServerUnavailableError() from exc
        with transaction.atomic():
            held = (
                PressPass.objects.select_for_update()
                .filter(pk=press_pass.pk, status=PressPass.Status.ACTIVE, rotating_until=until)
                .order_by()
                .values_list("pk", flat=True)
            )
            if not list(held):
                # Expired meanwhile, or the lease outlived (a stalled call): deliver nothing.
                logger.warning("press pass %s: rotation lost its lease", press_pass.pk)
                active = PressPass.objects.filter(pk=press_pass.pk, status=PressPass.Status.ACTIVE)
                raise CredentialsRotatingError() if active.exists() else PressPassNotFoundError()
            account.password = password
            account.save(update_fields=["password"])
            result = (delivery_resend if resend else delivery_create)(
                purpose=press_pass.purpose,
                payload=_payload(account, press_pass, password),
                method=method,
                contact=contact,
                actor=actor,
            )
            PressPass.objects.filter(pk=press_pass.pk).update(
                delivery=result.delivery,
                delivery_method=method,
                contact_info=contact,
                rotating_until=None,
            )
            press_pass.delivery = result.delivery
            press_pass.delivery_method, press_pass.contact_info = method, contact
            after: dict[str, Any]
            if resend:
                action, after = "demo_pool.credentials_resent", {"method": method}
            else:
                action = "demo_pool.press_pass_activated"
                after = {
                    "user_id": press_pass.user_id,
                    "login": account.login,
                    "expires_at": press_pass.expires_at,
                    "method": method,
                }
            audit_record(
                action=action,
                obj=press_pass,
                actor=actor,
                after={**after, "delivery": result.delivery.pk},
            )
        return result
    except BaseException:
        _end_lease(press_pass, until)
        raise


def _hand_over(press_pass: PressPass, account: DemoAccount, *, actor=None) -> DeliveryResult:
    """Fresh password through the gateway, stored encrypted, delivered; undone on failure.
    The pass holds its rotation lease since the claim: no resend can come first."""
    try:
        return _rotate_and_deliver(
            press_pass,
            account,
            method=press_pass.delivery_method,
            contact=press_pass.contact_info,
            resend=False,
            actor=actor,
            until=press_pass.rotating_until,
        )
    except Exception:
        _release(press_pass, account)
        raise


def press_pass_activate(
    *,
    user_id: str,
    real_name: str,
    delivery_method: str,
    contact_info: str = "",
    actor=None,
) -> ActivationResult:
    """Hand one pool account to `user_id` at once, or queue the activation when none is left."""
    config = pool_config_cached()
    now = timezone.now()
    try:
        claim = _claim_and_open(
            user_id=user_id,
            real_name=real_name,
            method=delivery_method,
            contact=contact_info,
            was_queued=False,
            now=now,
            expires_at=now + timedelta(days=config.press_pass_days),
            up_to=config.target_buffer,
        )
    except IntegrityError:
        raise PressPassActiveError() from None
    if claim is None:
        with transaction.atomic():
            request = _queue(
                user_id=user_id,
                real_name=real_name,
                method=delivery_method,
                contact=contact_info,
                now=now,
            )
        return ActivationResult(request=request)
    if claim.available_left < config.target_buffer:
        refill_nudge()  # under the target: the refill starts now, not in a minute
    try:
        result = _hand_over(claim.press_pass, claim.account, actor=actor)
    except DemoServerUnavailableError:
        # The demo server failed the password change: the account is back in the pool and
        # nothing was handed out. The activation waits in the queue (202) and is completed
        # (and delivered) by the fulfil task as soon as the server answers, not refused.
        with transaction.atomic():
            request = _queue(
                user_id=user_id,
                real_name=real_name,
                method=delivery_method,
                contact=contact_info,
                now=now,
            )
        enqueue_task("fulfil")
        return ActivationResult(request=request)
    return ActivationResult(press_pass=claim.press_pass, delivery=result)


def _claim_request_and_account(now):
    """The oldest waiting request and an account for it, with its pass (one transaction);
    (request, None, None) when the request turned out moot; (None, None, None): nothing to do."""
    config = pool_config_cached()
    request = None
    try:
        with transaction.atomic():
            request = (
                ActivationRequest.objects.select_for_update(skip_locked=True)
                .filter(status=ActivationRequest.Status.QUEUED)
                .order_by("created_at", "pk")
                .first()
            )
            if request is None:
                return None, None, None
            claim = _claim_and_open(
                user_id=request.user_id,
                real_name=request.real_name,
                method=request.delivery_method,
                contact=request.contact_info,
                was_queued=True,
                now=now,
                expires_at=now + timedelta(days=config.press_pass_days),
                up_to=0,
            )
            if claim is None:
                return None, None, None
            ActivationRequest.objects.filter(pk=request.pk).update(
                status=ActivationRequest.Status.PROVISIONING
            )
    except IntegrityError:
        # The user got a pass another way meanwhile: all of it rolled back, the request is moot.
        ActivationRequest.objects.filter(
            pk=request.pk, status=ActivationRequest.Status.QUEUED
        ).update(
            status=ActivationRequest.Status.FAILED,
            reason="The user already had an active press pass.",
            completed_at=now,
        )
        return request, None, None
    return request, claim.account, claim.press_pass


def activation_requests_fulfil(*, limit: int = 500) -> int:
    """Give waiting activations the available accounts, oldest first; how many were assigned."""
    assigned = 0
    for _ in range(limit):
        request, account, press_pass = _claim_request_and_account(timezone.now())
        if request is None:
            break
        if press_pass is None:
            continue
        try:
            result = _hand_over(press_pass, account)
        except Exception:
            logger.exception("activation request %s: hand-over failed, queued again", request.pk)
            ActivationRequest.objects.filter(pk=request.pk).update(
                status=ActivationRequest.Status.QUEUED
            )
            break
        request.status = ActivationRequest.Status.ASSIGNED
        request.press_pass = press_pass
        request.completed_at = timezone.now()
        fields = ["status", "press_pass", "completed_at"]
        if result.caller_link is not None:
            request.delivery_link = result.caller_link
            fields.append("delivery_link")
        request.save(update_fields=fields)
        assigned += 1
    return assigned


def press_pass_resend(
    *, user_id: str, delivery_method: str, contact_info: str = "", actor=None
) -> DeliveryResult:
    """Rotate the active pass's password again and deliver it anew; earlier links stop working.

    Resends of one pass wait for each other (its rotation lease; 409 `credentials_rotating`
    after `DEMO_REQUEST_TIMEOUT_SECONDS`), so the last link delivered always holds the
    password the server and the database have.
    """
    press_pass = (
        PressPass.objects.select_related("account")
        .filter(user_id=user_id, status=PressPass.Status.ACTIVE)
        .first()
    )
    if press_pass is None:
        raise PressPassNotFoundError()
    return _rotate_and_deliver(
        press_pass,
        press_pass.account,
        method=delivery_method,
        contact=contact_info,
        resend=True,
        actor=actor,
        wait_seconds=float(settings.DEMO_REQUEST_TIMEOUT_SECONDS),
    )
