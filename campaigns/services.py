"""Every write of the campaigns app: create, edit, lifecycle, duplicate, MT5 scan, expiry.

Each write is audited with before and after. Campaign.Status moves only along `TRANSITIONS`, by a
conditional UPDATE (`filter(pk=..., status=old)`), so of two concurrent transitions from the
same state exactly one wins and the other is refused.
"""

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record
from core.errors import ConflictError
from gateways.mt5 import get_mt5_gateway

from .models import Campaign, MT5Scan
from .validation import (
    EDITABLE_FIELDS,
    CampaignInvalid,
    Problem,
    campaign_check,
    campaign_validate,
    is_promo_code_clash,
    promo_code_taken,
)

TRANSITIONS: dict[str, frozenset[str]] = {
    Campaign.Status.DRAFT: frozenset({Campaign.Status.ACTIVE, Campaign.Status.ARCHIVED}),
    Campaign.Status.ACTIVE: frozenset({Campaign.Status.PAUSED, Campaign.Status.ENDED}),
    Campaign.Status.PAUSED: frozenset({Campaign.Status.ACTIVE, Campaign.Status.ENDED}),
    Campaign.Status.ENDED: frozenset({Campaign.Status.ARCHIVED}),
    Campaign.Status.ARCHIVED: frozenset(),
}

# How many expired campaigns one sweep ends; the next run takes the rest.
END_EXPIRED_BATCH = 500
SCAN_PK = 1
COPY_SUFFIX = " (copy)"


def campaign_snapshot(campaign: Campaign) -> dict[str, Any]:
    """The campaign's status and editable fields, as the audit trail records them."""
    return {
        "status": campaign.status,
        **{name: getattr(campaign, name) for name in EDITABLE_FIELDS},
    }


def campaign_create(*, actor: User | None, ip: str | None = None, **fields: Any) -> Campaign:
    """Create a campaign in draft after checking every rule; `created_by` is the actor."""
    _check_names(fields)
    clean = campaign_validate(fields)
    campaign = Campaign(**clean, status=Campaign.Status.DRAFT, created_by=actor)
    with transaction.atomic():
        _save(campaign, force_insert=True)
        audit_record(
            action="campaign.created",
            obj=campaign,
            actor=actor,
            after=campaign_snapshot(campaign),
            ip=ip,
        )
    return campaign


def campaign_update(
    *, campaign: Campaign, actor: User | None, ip: str | None = None, **fields: Any
) -> Campaign:
    """Change editable fields (never status); the whole result must keep every rule."""
    _check_names(fields)
    with transaction.atomic():
        current = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if current.status == Campaign.Status.ARCHIVED:
            raise ConflictError(
                "An archived campaign cannot be changed; duplicate it instead.",
                code="campaign_archived",
            )
        values = {name: getattr(current, name) for name in EDITABLE_FIELDS}
        clean = campaign_validate({**values, **fields}, pk=current.pk)
        changed = [name for name in EDITABLE_FIELDS if clean[name] != values[name]]
        if not changed:
            return current
        for name in changed:
            setattr(current, name, clean[name])
        _save(current, update_fields=[*changed, "updated_at"])
        audit_record(
            action="campaign.updated",
            obj=current,
            actor=actor,
            before={name: values[name] for name in changed},
            after={name: clean[name] for name in changed},
            ip=ip,
        )
    return current


def campaign_set_status(
    *,
    campaign: Campaign,
    status: str,
    actor: User | None,
    reason: str = "",
    ip: str | None = None,
) -> Campaign:
    """Move a campaign along one allowed transition, or refuse with 409."""
    old = campaign.status
    if status not in TRANSITIONS.get(old, ()):
        raise ConflictError(
            f"A campaign cannot go from {old} to {status}.", code="invalid_transition"
        )
    if status == Campaign.Status.ACTIVE:
        _check_can_activate(campaign)
    _transition(campaign, old=old, new=status, actor=actor, reason=reason, ip=ip)
    return campaign


def campaign_duplicate(
    *, campaign: Campaign, actor: User | None, ip: str | None = None
) -> Campaign:
    """Copy a campaign into a new draft named "<name> (copy)", without a promo code in use."""
    # Promo codes are unique among live campaigns: the code is copied only when no live
    # campaign holds it (an archived source whose code is free); otherwise the copy has none
    # and needs one before it can be activated or edited.
    values = {name: getattr(campaign, name) for name in EDITABLE_FIELDS}
    values["name"] = campaign.name[: 200 - len(COPY_SUFFIX)] + COPY_SUFFIX
    for name in ("agent_codes", "target_groups", "target_countries"):
        values[name] = list(values[name])
    if values["promo_code"] and promo_code_taken(values["promo_code"]):
        values["promo_code"] = None
    copy = Campaign(**values, status=Campaign.Status.DRAFT, created_by=actor)
    with transaction.atomic():
        try:
            with transaction.atomic():
                copy.save(force_insert=True)
        except IntegrityError as exc:
            if not is_promo_code_clash(exc):
                raise
            # Another campaign took the code between the check and the insert.
            copy.pk, copy.promo_code = None, None
            copy.save(force_insert=True)
        audit_record(
            action="campaign.duplicated",
            obj=copy,
            actor=actor,
            after={**campaign_snapshot(copy), "source_id": campaign.pk},
            reason=f"copy of campaign #{campaign.pk}",
            ip=ip,
        )
    return copy


def campaigns_end_expired(*, now: datetime | None = None) -> int:
    """Mark active and paused campaigns whose ends_at has passed as ended; return how many."""
    now = now or timezone.now()
    due = Campaign.objects.filter(
        status__in=[Campaign.Status.ACTIVE, Campaign.Status.PAUSED], ends_at__lte=now
    ).order_by("pk")[:END_EXPIRED_BATCH]
    ended = 0
    for campaign in list(due):
        try:
            _transition(
                campaign,
                old=campaign.status,
                new=Campaign.Status.ENDED,
                actor=None,
                reason="ends_at passed",
                ip=None,
            )
        except ConflictError:
            continue  # someone moved it meanwhile; the next sweep sees its new state
        ended += 1
    return ended


def mt5_scan(*, actor: User | None = None, ip: str | None = None) -> MT5Scan:
    """Read the groups and countries from the MT5 server and keep them for the forms."""
    # A gateway fault propagates (the API answers 503/502) and the previous scan stays.
    gateway = get_mt5_gateway()
    groups = sorted({group for group in gateway.list_groups() if group})
    countries = sorted({country for country in gateway.list_countries() if country})
    with transaction.atomic():
        previous = MT5Scan.objects.select_for_update().filter(pk=SCAN_PK).first()
        before = None
        if previous is not None:
            before = {"groups": previous.groups, "countries": previous.countries}
        scan, _ = MT5Scan.objects.update_or_create(
            pk=SCAN_PK,
            defaults={"groups": groups, "countries": countries, "scanned_at": timezone.now()},
        )
        audit_record(
            action="mt5_scan.refreshed",
            obj=scan,
            actor=actor,
            before=before,
            after={"groups": groups, "countries": countries},
            ip=ip,
        )
    return scan


def _check_names(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Not editable campaign fields: {', '.join(sorted(unknown))}")


def _check_can_activate(campaign: Campaign) -> None:
    if campaign.ends_at is not None and campaign.ends_at <= timezone.now():
        raise ConflictError(
            "The campaign's ends_at has passed; it cannot be active again.",
            code="campaign_ended",
        )
    # Only a duplicate whose promo code was dropped can be saved incomplete.
    values = {name: getattr(campaign, name) for name in EDITABLE_FIELDS}
    _, problems = campaign_check(values, pk=campaign.pk)
    if problems:
        invalid = CampaignInvalid(problems)
        raise ConflictError(
            "Complete the campaign before activating it.",
            code="campaign_incomplete",
            extra=invalid.extra,
        )


def _transition(
    campaign: Campaign, *, old: str, new: str, actor: User | None, reason: str, ip: str | None
) -> None:
    now = timezone.now()
    with transaction.atomic():
        moved = Campaign.objects.filter(pk=campaign.pk, status=old).update(
            status=new, updated_at=now
        )
        if moved != 1:
            current = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True)
            raise ConflictError(
                f"The campaign is no longer {old} (now {current.first()}); reload and retry.",
                code="invalid_transition",
            )
        audit_record(
            action="campaign.status_changed",
            obj=campaign,
            actor=actor,
            before={"status": old},
            after={"status": new},
            reason=reason,
            ip=ip,
        )
    campaign.status, campaign.updated_at = new, now


def _save(campaign: Campaign, **kwargs: Any) -> None:
    """Save; the live promo-code index refusing a second holder is a 400, not a 500."""
    try:
        with transaction.atomic():
            campaign.save(**kwargs)
    except IntegrityError as exc:
        if not is_promo_code_clash(exc):
            raise
        raise CampaignInvalid(
            [Problem("promo_code", "promo_code_taken", "Another campaign already uses this code.")]
        ) from exc
