"""Assignment: a press pass claims one available account, gets a fresh password through the
gateway and hands it to `delivery`. When the pool is empty the activation waits as a queued
`ActivationRequest`, completed (and delivered) as soon as an account is provisioned.

The claim is `SELECT ... FOR UPDATE SKIP LOCKED` plus a conditional UPDATE in one short
transaction: no two activations ever get the same account. Gateway calls happen after it
commits; if one fails, the claim is undone and the account goes back to the pool.
"""

import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.services import audit_record
from delivery.models import Delivery
from delivery.services import DeliveryResult, delivery_create, delivery_resend
from demo_pool.errors import (
    ActivationQueuedError,
    DemoServerUnavailableError,
    PressPassActiveError,
    PressPassNotFoundError,
)
from demo_pool.models import ActivationRequest, DemoAccount, PoolConfig, PressPass
from gateways.demo import get_demo_gateway
from gateways.errors import GatewayError

from .common import enqueue_task, logger

Status = DemoAccount.Status
ReqStatus = ActivationRequest.Status
HANDED_TO_CALLER = (Delivery.Method.API, Delivery.Method.QR)
_SYMBOLS = "!#$%*+-=?@_"


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


def _claim_available(now) -> DemoAccount | None:
    """Inside a transaction: take the oldest available account no one else is taking."""
    for _ in range(5):
        account = (
            DemoAccount.objects.select_for_update(skip_locked=True)
            .filter(status=Status.AVAILABLE)
            .order_by("created_at", "pk")
            .first()
        )
        if account is None:
            return None
        # Conditional: on SQLite (no row locks) a concurrent claim makes this match nothing.
        if DemoAccount.objects.filter(pk=account.pk, status=Status.AVAILABLE).update(
            status=Status.ASSIGNED, assigned_at=now
        ):
            account.status, account.assigned_at = Status.ASSIGNED, now
            return account
    return None


def _open_pass(account: DemoAccount, *, user_id, real_name, method, contact, was_queued, now):
    """Inside the claim's transaction: the press pass; a second active one for the user: 409."""
    config = PoolConfig.load()
    expires_at = now + timedelta(days=config.press_pass_days)
    try:
        with transaction.atomic():
            press_pass = PressPass.objects.create(
                user_id=user_id,
                real_name=real_name,
                account=account,
                delivery_method=method,
                contact_info=contact,
                was_queued=was_queued,
                activated_at=now,
                expires_at=expires_at,
            )
    except IntegrityError:
        raise PressPassActiveError() from None
    DemoAccount.objects.filter(pk=account.pk).update(expires_at=expires_at)
    account.expires_at = expires_at
    return press_pass


def _refill_if_low() -> None:
    config = PoolConfig.load()
    if DemoAccount.objects.filter(status=Status.AVAILABLE).count() < config.min_available:
        enqueue_task("refill")


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
    days = PoolConfig.load().account_expiry_days
    DemoAccount.objects.filter(pk=account.pk, status=Status.ASSIGNED).update(
        status=Status.AVAILABLE,
        assigned_at=None,
        expires_at=(account.available_at or timezone.now()) + timedelta(days=days),
    )


def _release(press_pass: PressPass, account: DemoAccount) -> None:
    """Undo a claim whose hand-over failed: the pass goes, the account returns to the pool."""
    with transaction.atomic():
        PressPass.objects.filter(pk=press_pass.pk).delete()
        _unclaim(account)


@sensitive_variables()
def _hand_over(press_pass: PressPass, account: DemoAccount, *, actor=None) -> DeliveryResult:
    """Fresh password through the gateway, stored encrypted, delivered; undone on failure."""
    password = new_password()
    try:
        get_demo_gateway().change_password(account.login, password)
    except GatewayError as exc:
        logger.warning("demo account %s: password change failed: %s", account.login, exc)
        _release(press_pass, account)
        raise DemoServerUnavailableError() from exc
    try:
        with transaction.atomic():
            account.password = password
            account.save(update_fields=["password"])
            result = delivery_create(
                purpose=press_pass.purpose,
                payload=_payload(account, press_pass, password),
                method=press_pass.delivery_method,
                contact=press_pass.contact_info,
                actor=actor,
            )
            press_pass.delivery = result.delivery
            press_pass.save(update_fields=["delivery"])
            audit_record(
                action="demo_pool.press_pass_activated",
                obj=press_pass,
                actor=actor,
                after={
                    "user_id": press_pass.user_id,
                    "login": account.login,
                    "expires_at": press_pass.expires_at,
                    "delivery": result.delivery.pk,
                    "method": press_pass.delivery_method,
                },
            )
    except Exception:
        _release(press_pass, account)
        raise
    return result


def press_pass_activate(
    *,
    user_id: str,
    real_name: str,
    delivery_method: str,
    contact_info: str = "",
    actor=None,
) -> ActivationResult:
    """Hand one pool account to `user_id` at once, or queue the activation when none is left."""
    if PressPass.objects.filter(user_id=user_id, status=PressPass.Status.ACTIVE).exists():
        raise PressPassActiveError()
    if ActivationRequest.objects.filter(
        user_id=user_id, status__in=ActivationRequest.OPEN
    ).exists():
        raise ActivationQueuedError()
    now = timezone.now()
    with transaction.atomic():
        account = _claim_available(now)
        if account is None:
            try:
                with transaction.atomic():
                    request = ActivationRequest.objects.create(
                        user_id=user_id,
                        real_name=real_name,
                        delivery_method=delivery_method,
                        contact_info=contact_info,
                        created_at=now,
                    )
            except IntegrityError:
                raise ActivationQueuedError() from None
            enqueue_task("refill")
            logger.info("press pass for %s queued: the pool is empty", user_id)
            return ActivationResult(request=request)
        press_pass = _open_pass(
            account,
            user_id=user_id,
            real_name=real_name,
            method=delivery_method,
            contact=contact_info,
            was_queued=False,
            now=now,
        )
        _refill_if_low()
    result = _hand_over(press_pass, account, actor=actor)
    return ActivationResult(press_pass=press_pass, delivery=result)


def _claim_request_and_account(now):
    with transaction.atomic():
        request = (
            ActivationRequest.objects.select_for_update(skip_locked=True)
            .filter(status=ReqStatus.QUEUED)
            .order_by("created_at", "pk")
            .first()
        )
        if request is None:
            return None, None, None
        account = _claim_available(now)
        if account is None:
            return None, None, None
        ActivationRequest.objects.filter(pk=request.pk).update(status=ReqStatus.PROVISIONING)
        try:
            press_pass = _open_pass(
                account,
                user_id=request.user_id,
                real_name=request.real_name,
                method=request.delivery_method,
                contact=request.contact_info,
                was_queued=True,
                now=now,
            )
        except PressPassActiveError:
            press_pass = None
    if press_pass is None:
        # The user got a pass another way meanwhile: this request is moot, the account returns.
        with transaction.atomic():
            _unclaim(account)
            ActivationRequest.objects.filter(pk=request.pk).update(
                status=ReqStatus.FAILED,
                reason="The user already had an active press pass.",
                completed_at=now,
            )
        return request, None, None
    return request, account, press_pass


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
            ActivationRequest.objects.filter(pk=request.pk).update(status=ReqStatus.QUEUED)
            break
        request.status = ReqStatus.ASSIGNED
        request.press_pass = press_pass
        request.completed_at = timezone.now()
        fields = ["status", "press_pass", "completed_at"]
        if press_pass.delivery_method in HANDED_TO_CALLER:
            request.delivery_link = result.link
            fields.append("delivery_link")
        request.save(update_fields=fields)
        assigned += 1
    return assigned


@sensitive_variables()
def press_pass_resend(
    *, user_id: str, delivery_method: str, contact_info: str = "", actor=None
) -> DeliveryResult:
    """Rotate the active pass's password again and deliver it anew; earlier links stop working."""
    press_pass = (
        PressPass.objects.select_related("account")
        .filter(user_id=user_id, status=PressPass.Status.ACTIVE)
        .first()
    )
    if press_pass is None:
        raise PressPassNotFoundError()
    account = press_pass.account
    password = new_password()
    try:
        get_demo_gateway().change_password(account.login, password)
    except GatewayError as exc:
        raise DemoServerUnavailableError() from exc
    with transaction.atomic():
        account.password = password
        account.save(update_fields=["password"])
        result = delivery_resend(
            purpose=press_pass.purpose,
            payload=_payload(account, press_pass, password),
            method=delivery_method,
            contact=contact_info,
            actor=actor,
        )
        press_pass.delivery = result.delivery
        press_pass.delivery_method = delivery_method
        press_pass.contact_info = contact_info
        press_pass.save(update_fields=["delivery", "delivery_method", "contact_info"])
        audit_record(
            action="demo_pool.credentials_resent",
            obj=press_pass,
            actor=actor,
            after={"delivery": result.delivery.pk, "method": delivery_method},
        )
    return result
