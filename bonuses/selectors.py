"""Reads of the bonus domain that are more than one queryset: account lookup, audit trails."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from accounts.models import AuditEvent, MonitoredAccount
from bonuses.models import Bonus, CreditIntent
from core.errors import NotFoundError
from gateways.mt5 import MT5Account, get_mt5_gateway

BONUS_OBJECT_TYPE = Bonus._meta.label_lower
CAMPAIGN_OBJECT_TYPE = "campaigns.campaign"

# An account the monitor does not watch (yet: discovery registers new logins every minute).
UNMONITORED = {"status": "unmonitored", "consecutive_errors": 0, "last_polled_at": None}

# Op ids made today, and the 32-hex ones made before MT5's 31-character comment was honoured.
OP_ID_LENGTHS = frozenset({len(CreditIntent.new_op_id()), 32})

# One gateway call per this many logins when listing the whole server.
_ACCOUNTS_BATCH = 500


@dataclass(frozen=True)
class AccountLookup:
    """One MT5 account as staff look it up: live state, monitoring, bonuses, audit trail."""

    account: MT5Account
    monitoring: dict[str, Any]
    bonuses: list[Bonus]
    audit: list[AuditEvent]


def bonus_list() -> QuerySet[Bonus]:
    """Bonuses with what their serializer reads, in one query per page."""
    return Bonus.objects.select_related("campaign")


def bonus_events(*, bonus: Bonus) -> QuerySet[AuditEvent]:
    """The audit events of one bonus, oldest first (its chain order)."""
    return AuditEvent.objects.filter(
        object_type=BONUS_OBJECT_TYPE, object_id=str(bonus.pk)
    ).order_by("seq")


def audit_trail() -> QuerySet[AuditEvent]:
    """The bonus domain's audit trail: campaigns, bonus-engine objects and MT5 accounts.

    User and API-key events stay in the admin's full trail.
    """
    return AuditEvent.objects.filter(
        Q(object_type__startswith="bonuses.")
        | Q(object_type__startswith="campaigns.")
        | Q(mt5_login__isnull=False)
    )


def audit_campaign_ids(events: Iterable[AuditEvent]) -> dict[int, int]:
    """`{bonus_id: campaign_id}` for the bonus events among `events`, in one query."""
    bonus_ids = {
        int(event.object_id)
        for event in events
        if event.object_type == BONUS_OBJECT_TYPE and event.object_id.isdigit()
    }
    if not bonus_ids:
        return {}
    return dict(Bonus.objects.filter(pk__in=bonus_ids).values_list("pk", "campaign_id"))


def account_lookup(*, login: int, audit_limit: int = 200) -> AccountLookup:
    """The account's live state from the server, its bonuses and its latest audit events.

    Raises NotFoundError (`account_not_found`) when the server does not know the login.
    """
    account = get_mt5_gateway().get_accounts([login]).get(login)
    if account is None:
        raise NotFoundError(f"No MT5 account {login}.", code="account_not_found")
    bonuses = list(bonus_list().filter(login=login))
    audit = list(audit_trail().filter(mt5_login=login).order_by("-at", "-id")[:audit_limit])
    return AccountLookup(
        account=account, monitoring=_monitoring(login), bonuses=bonuses, audit=audit
    )


def mt5_metadata() -> dict[str, list]:
    """The server's groups, countries and accounts (login, name, group, country), for forms."""
    gateway = get_mt5_gateway()
    logins = gateway.list_logins()
    accounts: list[dict[str, Any]] = []
    for start in range(0, len(logins), _ACCOUNTS_BATCH):
        found = gateway.get_accounts(logins[start : start + _ACCOUNTS_BATCH])
        accounts.extend(
            {"login": a.login, "name": a.name, "group": a.group, "country": a.country}
            for a in sorted(found.values(), key=lambda a: a.login)
        )
    return {
        "groups": gateway.list_groups(),
        "countries": gateway.list_countries(),
        "accounts": accounts,
    }


def operation_comments(*, comments: Iterable[str]) -> set[str]:
    """Which of these MT5 deal comments are op ids of the engine's own writes (one query)."""
    wanted = [comment for comment in comments if len(comment) in OP_ID_LENGTHS]
    if not wanted:
        return set()
    return set(CreditIntent.objects.filter(op_id__in=wanted).values_list("op_id", flat=True))


def _monitoring(login: int) -> dict[str, Any]:
    row = (
        MonitoredAccount.objects.filter(server=settings.MT5_SERVER, login=login)
        .values("status", "consecutive_errors", "last_error", "last_polled_at")
        .first()
    )
    return dict(row) if row is not None else dict(UNMONITORED, last_error="")
