"""Who may get a campaign's bonus: every rule checked, every failure reported.

Not overridable: `campaign_status` (the campaign is not active), `campaign_ended` (outside its
dates: past `ends_at`, or before `starts_at`, which the message says), `account_not_found`.
Overridable: `group_mismatch` (target groups may use MT5's `*` wildcard), `country_mismatch`
(case-insensitive), `deposit_below_min` / `deposit_above_max` (only checked when a deposit
amount is given), `duplicate_bonus` (one_per_account and a pending, active or ended bonus of
this campaign exists; a `failed` one gave nothing and does not count), `max_concurrent`
(pending + active bonuses on the account >= the limit), `agent_code_mismatch` (the campaign has
agent codes and the account's Lead Source is not one of them, case-insensitive),
`stacking_exclusive` (only when a deposit deal is given: the deal already gave a bonus of
another campaign, not failed, and this campaign or one of those is exclusive).
"""

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase

from django.utils import timezone

from bonuses.models import Bonus
from campaigns.models import Campaign
from core.errors import ConflictError
from gateways.mt5 import MT5Account

from .common import LIVE_STATUSES, campaign_window_problem, read_account


@dataclass(frozen=True)
class EligibilityFailure:
    """One rule the account fails; `overridable` failures may be waived by staff."""

    code: str
    message: str
    overridable: bool


class IneligibleError(ConflictError):
    """409 with every failure in `extra["failures"]` (and `.failures`)."""

    code = "ineligible"
    default_detail = "The account is not eligible for this campaign."

    def __init__(self, detail: str | None = None, *, failures=(), **kwargs):
        self.failures = list(failures)
        extra = dict(kwargs.pop("extra", None) or {})
        extra["failures"] = [asdict(failure) for failure in self.failures]
        super().__init__(detail, extra=extra, **kwargs)


def check_eligibility_all(
    *,
    login: int,
    campaign: Campaign,
    deposit_amount: Decimal | None = None,
    deal_id: int | None = None,
) -> list[EligibilityFailure]:
    """Every rule `login` fails for `campaign` (empty: eligible). Reads the MT5 account."""
    account = read_account(login)
    return eligibility_failures(
        login=login,
        account=account,
        campaign=campaign,
        deposit_amount=deposit_amount,
        deal_id=deal_id,
    )


def eligibility_failures(
    *,
    login: int,
    account: MT5Account | None,
    campaign: Campaign,
    deposit_amount: Decimal | None,
    deal_id: int | None = None,
    now: datetime | None = None,
    held: list[Bonus] | None = None,
) -> list[EligibilityFailure]:
    """The rules against an account already read; the grant calls it again under its lock.

    `held`: the login's bonuses as `held_bonuses` reads them (a batch reads them once for
    many accounts); read here when not given.
    """
    failures: list[EligibilityFailure] = []

    def fail(code: str, message: str, overridable: bool) -> None:
        failures.append(EligibilityFailure(code=code, message=message, overridable=overridable))

    if campaign.status != Campaign.Status.ACTIVE:
        fail("campaign_status", f"Campaign is {campaign.status}, not active.", False)
    window = campaign_window_problem(campaign, now or timezone.now())
    if window:
        fail("campaign_ended", window, False)
    if account is None:
        fail("account_not_found", f"MT5 account {login} does not exist.", False)
    else:
        if campaign.target_groups and not any(
            fnmatchcase(account.group, str(pattern)) for pattern in campaign.target_groups
        ):
            fail("group_mismatch", f"Group {account.group} is not targeted.", True)
        countries = {str(c).strip().casefold() for c in campaign.target_countries}
        if countries and account.country.strip().casefold() not in countries:
            fail("country_mismatch", f"Country {account.country or '-'} is not targeted.", True)
        codes = normalized_codes(campaign.agent_codes)
        if codes and account.lead_source.strip().casefold() not in codes:
            shown = account.lead_source or "empty"
            fail("agent_code_mismatch", f"Lead Source ({shown}) matches no agent code.", True)
    if deposit_amount is not None:
        if deposit_amount < campaign.min_deposit:
            fail(
                "deposit_below_min",
                f"Deposit {deposit_amount} is below the minimum {campaign.min_deposit}.",
                True,
            )
        if campaign.max_deposit is not None and deposit_amount > campaign.max_deposit:
            fail(
                "deposit_above_max",
                f"Deposit {deposit_amount} is above the maximum {campaign.max_deposit}.",
                True,
            )
    if held is None:
        held = held_bonuses([login]).get(login, [])
    if campaign.one_per_account and any(
        bonus.campaign_id == campaign.pk and bonus.status != Bonus.Status.FAILED for bonus in held
    ):
        fail("duplicate_bonus", "The account already received this campaign's bonus.", True)
    if campaign.max_concurrent is not None:
        live = sum(1 for bonus in held if bonus.status in LIVE_STATUSES)
        if live >= campaign.max_concurrent:
            fail(
                "max_concurrent",
                f"The account holds {live} bonuses; the campaign allows {campaign.max_concurrent}.",
                True,
            )
    if deal_id is not None:
        problem = stacking_problem(login=login, campaign=campaign, deal_id=deal_id, held=held)
        if problem:
            fail("stacking_exclusive", problem, True)
    return failures


def held_bonuses(logins) -> dict[int, list[Bonus]]:
    """Every bonus of these logins, oldest first, with what the rules read of their campaigns."""
    held: dict[int, list[Bonus]] = {}
    rows = (
        Bonus.objects.filter(login__in=list(logins))
        .select_related("campaign")
        .only(
            "login",
            "campaign_id",
            "status",
            "trigger",
            "deposit_deal_id",
            "campaign__name",
            "campaign__stacking",
        )
        .order_by("pk")
    )
    for bonus in rows:
        held.setdefault(bonus.login, []).append(bonus)
    return held


def deal_bonuses_elsewhere(
    *, login: int, campaign: Campaign, deal_id: int, held: list[Bonus] | None = None
) -> list[Bonus]:
    """The bonuses (not failed) that deposit deal `deal_id` already gave other campaigns,
    oldest first (among `held`, the login's bonuses, when given)."""
    if held is None:
        held = held_bonuses([login]).get(login, [])
    return [
        bonus
        for bonus in held
        if bonus.deposit_deal_id == deal_id
        and bonus.status != Bonus.Status.FAILED
        and bonus.campaign_id != campaign.pk
    ]


def stacking_problem(
    *, login: int, campaign: Campaign, deal_id: int, held: list[Bonus] | None = None
) -> str | None:
    """Why `campaign` may not join the bonuses deal `deal_id` already gave, or None."""
    others = deal_bonuses_elsewhere(login=login, campaign=campaign, deal_id=deal_id, held=held)
    if not others:
        return None
    given = f"Deposit deal {deal_id} already gave a bonus of"
    if campaign.stacking == Campaign.Stacking.EXCLUSIVE:
        names = ", ".join(f"#{bonus.campaign_id} {bonus.campaign.name}" for bonus in others)
        return f"{given} {names}; this campaign is exclusive."
    exclusive = [b.campaign for b in others if b.campaign.stacking == Campaign.Stacking.EXCLUSIVE]
    if exclusive:
        return f"{given} #{exclusive[0].pk} {exclusive[0].name}, which is exclusive."
    return None


def normalized_codes(codes) -> set[str]:
    """Agent codes as compared: trimmed, case-folded, blanks dropped."""
    return {str(code).strip().casefold() for code in codes or [] if str(code).strip()}
