"""One-time deliveries: create, resend, view, reveal, expire.

A link is `/d/<token>`: 256 random bits, of which the database keeps only the SHA-256. The
payload is sealed with a key derived from the token (HKDF) and stored encrypted under the
keyring on top, so opening it needs the link *and* the server's keys. A reveal claims the
delivery with one conditional UPDATE, so exactly one of any number of concurrent reveals
wins. Every request (view or reveal, served or refused) leaves a `DeliveryAttempt`.
"""

import hashlib
import ipaddress
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.services import audit_record
from delivery.channels import Channel, channel_get
from delivery.crypto import CryptoError, open_with_token, seal_with_token
from delivery.errors import (
    InvalidDeliveryError,
    LinkExpiredError,
    LinkFailedError,
    LinkNotFoundError,
    LinkSupersededError,
    LinkUsedError,
)
from delivery.models import Delivery, DeliveryAttempt
from delivery.qr import png_data_uri
from delivery.useragents import is_preview_bot

logger = logging.getLogger("delivery")


TOKEN_BYTES = 32  # 256 random bits in the link
REVEALABLE = (Delivery.Status.PENDING, Delivery.Status.SENT)
SUPERSEDABLE = (Delivery.Status.PENDING, Delivery.Status.SENT, Delivery.Status.FAILED)
CONTACT_MAX_CHARS = 254
MAX_PAYLOAD_CHARS = 16_000
USER_AGENT_MAX = 512

_REFUSALS = {
    DeliveryAttempt.Outcome.NOT_FOUND: LinkNotFoundError,
    DeliveryAttempt.Outcome.REFUSED_USED: LinkUsedError,
    DeliveryAttempt.Outcome.REFUSED_EXPIRED: LinkExpiredError,
    DeliveryAttempt.Outcome.REFUSED_SUPERSEDED: LinkSupersededError,
    DeliveryAttempt.Outcome.REFUSED_FAILED: LinkFailedError,
}


@dataclass(frozen=True)
class DeliveryResult:
    """A new delivery and its link; for `qr`, the link's QR code as SVG and PNG.

    The link exists only here (and in the channel's message): the database keeps its hash.
    What the caller may show its user is `caller_link`: the link when the channel hands it to
    the caller (api, qr), None when the channel carries it to the contact (telegram, email).
    """

    delivery: Delivery
    link: str
    qr_svg: str | None = None
    qr_png: bytes | None = None

    @property
    def channel(self) -> Channel:
        return channel_get(self.delivery.method)

    @property
    def caller_link(self) -> str | None:
        """The link if the caller is the one to hand it over, else None."""
        return self.link if self.channel.hands_link_to_caller else None

    @property
    def qr_png_data_uri(self) -> str | None:
        return png_data_uri(self.qr_png) if self.qr_png is not None else None


@dataclass(frozen=True)
class LinkState:
    """What a GET of a live link may show: nothing of the secret."""

    delivery_id: int
    expires_at: datetime


@dataclass(frozen=True)
class Revealed:
    """The one successful reveal of a link."""

    delivery_id: int
    payload: dict | str
    revealed_at: datetime


def token_hash(token: str) -> str:
    """What the database keeps of a link's token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def link_for(token: str) -> str:
    """The absolute link a person opens: `PUBLIC_BASE_URL` + `/d/<token>`."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("delivery:reveal", args=[token])


def _seal_aad(digest: str) -> str:
    return f"delivery.payload:{digest}"


# --- Create and resend ------------------------------------------------------------------------


@sensitive_variables()
def delivery_create(
    *,
    purpose: str,
    payload: dict | str,
    method: str,
    contact: str = "",
    owner=None,
    actor=None,
) -> DeliveryResult:
    """Make a one-time link to `payload` and send it by `method` (telegram, email, api, qr)."""
    method, contact, purpose = _validated(method=method, contact=contact, purpose=purpose)
    plaintext = _encoded(payload)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    digest = token_hash(token)
    link = link_for(token)
    now = timezone.now()
    channel = channel_get(method)
    handed_over = channel.hands_link_to_caller
    delivery = Delivery(
        purpose=purpose,
        owner=owner,
        method=method,
        contact=contact,
        status=Delivery.Status.SENT if handed_over else Delivery.Status.PENDING,
        token_hash=digest,
        created_at=now,
        expires_at=now + timedelta(minutes=settings.DELIVERY_LINK_TTL_MINUTES),
        sent_at=now if handed_over else None,
    )
    delivery.payload = seal_with_token(plaintext, token=token, aad=_seal_aad(digest))
    if not handed_over:
        # The worker that sends it needs the link; it waits here encrypted, never in the broker.
        delivery.pending_link = link
    with transaction.atomic():
        delivery.save(force_insert=True)
        audit_record(
            action="delivery.created",
            obj=delivery,
            actor=actor,
            after={
                "purpose": purpose,
                "method": method,
                "contact": contact,
                "status": delivery.status,
                "expires_at": delivery.expires_at,
            },
        )
        if not handed_over:
            transaction.on_commit(partial(_enqueue_send, delivery.pk, method))
    logger.info("delivery %s created (%s, %s)", delivery.pk, method, delivery.status)
    return DeliveryResult(delivery, link, **channel.extras_for(link))


def delivery_result(*, delivery: Delivery, link: str) -> DeliveryResult:
    """A delivery and a link to it kept elsewhere (encrypted), as `delivery_create` answered
    them: `caller_link` and the channel's extras (the QR code) again."""
    return DeliveryResult(delivery, link, **channel_get(delivery.method).extras_for(link))


@sensitive_variables()
def delivery_resend(
    *,
    purpose: str,
    payload: dict | str,
    method: str,
    contact: str = "",
    owner=None,
    actor=None,
) -> DeliveryResult:
    """Make a new delivery for `purpose`; every earlier one for it stops working (superseded)."""
    with transaction.atomic():
        _lock_purpose(purpose)
        result = delivery_create(
            purpose=purpose,
            payload=payload,
            method=method,
            contact=contact,
            owner=owner,
            actor=actor,
        )
        earlier = Delivery.objects.filter(purpose=purpose, status__in=SUPERSEDABLE).exclude(
            pk=result.delivery.pk
        )
        superseded = list(earlier.values_list("pk", "status"))
        earlier.filter(pk__in=[pk for pk, _ in superseded]).update(
            status=Delivery.Status.SUPERSEDED,
            superseded_by=result.delivery,
            payload=None,
            pending_link=None,
        )
        for pk, before in superseded:
            audit_record(
                action="delivery.superseded",
                object_type=Delivery._meta.label_lower,
                object_id=pk,
                actor=actor,
                before={"status": before},
                after={"status": Delivery.Status.SUPERSEDED, "superseded_by": result.delivery.pk},
            )
    logger.info(
        "delivery %s resent for its purpose; %d earlier superseded",
        result.delivery.pk,
        len(superseded),
    )
    return result


def _lock_purpose(purpose: str) -> None:
    """Serialize resends of one purpose (PostgreSQL), so two at once leave one live link."""
    if connection.vendor != "postgresql":
        return  # SQLite's write transactions are serialized already
    digest = hashlib.blake2b(f"delivery.purpose\x00{purpose}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)]
        )


def delivery_contact_check(*, method: str, contact: str) -> str:
    """The contact a delivery by `method` needs, stripped; `InvalidDeliveryError` if it is not
    one (the channel's own check: an email address for email, a chat id or @channel for
    Telegram). Other apps call it to refuse bad input before they do anything they would have
    to undo. An unknown `method` raises `UnknownChannelError` (`invalid_method`)."""
    channel = channel_get(method)
    contact = (contact or "").strip()
    if len(contact) > CONTACT_MAX_CHARS:
        raise InvalidDeliveryError("The contact is too long.", code="invalid_contact")
    return channel.contact_check(contact)


def _validated(*, method: str, contact: str, purpose: str) -> tuple[str, str, str]:
    channel_get(method)  # an unknown method is refused before anything else
    purpose = (purpose or "").strip()
    if not purpose or len(purpose) > 200:
        raise InvalidDeliveryError("A purpose of 1 to 200 characters is required.")
    contact = delivery_contact_check(method=method, contact=contact)
    return method, contact, purpose


@sensitive_variables()
def _encoded(payload) -> bytes:
    if not isinstance(payload, dict | str) or not payload:
        raise InvalidDeliveryError("The payload is a non-empty object or string.")
    try:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise InvalidDeliveryError("The payload must be JSON-serializable.") from None
    if len(text) > MAX_PAYLOAD_CHARS:
        raise InvalidDeliveryError("The payload is too large.")
    return text.encode()


def _enqueue_send(delivery_id: int, method: str) -> None:
    from delivery.tasks import send_task_for

    try:
        send_task_for(method).delay(delivery_id)
    except Exception:
        # The delivery is committed and stays pending (and expires); staff see it and resend.
        logger.exception("delivery %s: could not queue its %s send", delivery_id, method)


# --- View and reveal --------------------------------------------------------------------------


@sensitive_variables()
def delivery_view(*, token: str, ip: str | None, user_agent: str = "") -> LinkState:
    """A GET of the link: says whether it can be revealed, reveals nothing, logs the attempt."""
    digest = token_hash(token)
    now = timezone.now()
    delivery = _by_hash(digest)
    if delivery is not None and delivery.status in REVEALABLE and delivery.expires_at > now:
        outcome = DeliveryAttempt.Outcome.VIEWED
    else:
        outcome = _refusal(delivery, now, mark_expired=False)
    _log_attempt(delivery, DeliveryAttempt.Action.VIEW, outcome, ip=ip, user_agent=user_agent)
    if outcome != DeliveryAttempt.Outcome.VIEWED:
        raise _REFUSALS[outcome]()
    assert delivery is not None  # VIEWED only for a found, revealable delivery; else refused
    return LinkState(delivery_id=delivery.pk, expires_at=delivery.expires_at)


@sensitive_variables()
def delivery_reveal(*, token: str, ip: str | None, user_agent: str = "") -> Revealed:
    """Reveal a link's payload, once: of any number of concurrent calls exactly one wins.

    Refused: 410 (used, expired, superseded, never delivered) or 404 (unknown token). An
    unknown token costs the same queries as a refused one (claim, read, log), and the lookup
    is by hash, so timing tells nothing about which tokens exist.
    """
    digest = token_hash(token)
    now = timezone.now()
    delivery = None
    try:
        with transaction.atomic():
            claimed = Delivery.objects.filter(
                token_hash=digest, status__in=REVEALABLE, expires_at__gt=now
            ).update(status=Delivery.Status.REVEALED, revealed_at=now)
            delivery = _by_hash(digest)
            if claimed:
                # The claim updated a row with this hash in this transaction: the read finds it.
                assert delivery is not None
                payload = _open(delivery, token)
                Delivery.objects.filter(pk=delivery.pk).update(payload=None, pending_link=None)
                outcome = DeliveryAttempt.Outcome.REVEALED
                audit_record(
                    action="delivery.revealed",
                    obj=delivery,
                    ip=_clean_ip(ip),
                    after={"status": Delivery.Status.REVEALED, "revealed_at": now},
                )
            else:
                outcome = _refusal(delivery, now, mark_expired=True)
            _log_attempt(
                delivery, DeliveryAttempt.Action.REVEAL, outcome, ip=ip, user_agent=user_agent
            )
    except CryptoError:
        # The claim rolled back (still revealable once the keys are fixed); the attempt stays.
        logger.error("delivery %s: payload could not be decrypted", getattr(delivery, "pk", None))
        _log_attempt(
            delivery,
            DeliveryAttempt.Action.REVEAL,
            DeliveryAttempt.Outcome.ERROR,
            ip=ip,
            user_agent=user_agent,
        )
        raise
    if outcome != DeliveryAttempt.Outcome.REVEALED:
        raise _REFUSALS[outcome]()
    assert delivery is not None  # REVEALED only on the claimed path, where it was found
    logger.info("delivery %s revealed", delivery.pk)
    return Revealed(delivery_id=delivery.pk, payload=payload, revealed_at=now)


def _by_hash(digest: str) -> Delivery | None:
    return (
        Delivery.objects.filter(token_hash=digest)
        .only("id", "status", "expires_at", "token_hash", "payload")
        .first()
    )


@sensitive_variables()
def _open(delivery: Delivery, token: str) -> dict | str:
    sealed = delivery.payload  # the keyring layer comes off here (bound to this row)
    if sealed is None:
        raise CryptoError(f"delivery {delivery.pk} has no payload left")
    plain = open_with_token(sealed, token=token, aad=_seal_aad(delivery.token_hash))
    return json.loads(plain)


def _refusal(
    delivery: Delivery | None, now: datetime, *, mark_expired: bool
) -> DeliveryAttempt.Outcome:
    if delivery is None:
        return DeliveryAttempt.Outcome.NOT_FOUND
    if delivery.status == Delivery.Status.REVEALED:
        return DeliveryAttempt.Outcome.REFUSED_USED
    if delivery.status == Delivery.Status.SUPERSEDED:
        return DeliveryAttempt.Outcome.REFUSED_SUPERSEDED
    if delivery.status == Delivery.Status.FAILED:
        return DeliveryAttempt.Outcome.REFUSED_FAILED
    if delivery.status == Delivery.Status.EXPIRED or delivery.expires_at <= now:
        if mark_expired and delivery.status in REVEALABLE:
            _expire(Delivery.objects.filter(pk=delivery.pk), now)
        return DeliveryAttempt.Outcome.REFUSED_EXPIRED
    # Live, yet the claim matched nothing: another request changed it in between.
    return DeliveryAttempt.Outcome.REFUSED_USED


def _log_attempt(
    delivery: Delivery | None, action: str, outcome: str, *, ip: str | None, user_agent: str
) -> DeliveryAttempt:
    user_agent = (user_agent or "")[:USER_AGENT_MAX]
    return DeliveryAttempt.objects.create(
        delivery=delivery,
        action=action,
        outcome=outcome,
        ip=_clean_ip(ip),
        user_agent=user_agent,
        is_preview_bot=is_preview_bot(user_agent),
    )


def _clean_ip(ip: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


# --- Expiry -----------------------------------------------------------------------------------


def _expire(queryset, now: datetime) -> int:
    return queryset.filter(status__in=REVEALABLE, expires_at__lte=now).update(
        status=Delivery.Status.EXPIRED, payload=None, pending_link=None
    )


def deliveries_expire_due(*, batch_size: int = 1000) -> int:
    """Mark live deliveries past `expires_at` expired and wipe their ciphertext; how many."""
    total = 0
    while True:
        now = timezone.now()
        due = Delivery.objects.filter(status__in=REVEALABLE, expires_at__lte=now)
        ids = list(due.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        total += _expire(Delivery.objects.filter(pk__in=ids), now)
        if len(ids) < batch_size:
            break
    if total:
        logger.info("%d deliveries expired", total)
    return total
