"""Who may get a campaign's bonus: every rule checked, every failure reported.

Not overridable: `campaign_status` (the campaign is not active), `campaign_ended` (outside its
dates: past `ends_at`, or before `starts_at`, which the message says), `account_not_found`.
Overridable: `group_mismatch` (target groups may use MT5's `*` wildcard), `country_mismatch`
(case-insensitive), `deposit_below_min` / `deposit_above_max` (only checked when a deposit
amount is given), `duplicate_bonus` (one_per_account and a pending, active or ended bonus of
this campaign exists; a `failed` one gave nothing and does not count), `max_concurrent`
(pending + active bonuses on the account >= the limit), `agent_code_mismatch` (the campaign has
agent codes and the account's Lead Source is not one of them, case-insensitive).
"""

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase

from django.utils import timezone

from accounts.errors import ConflictError
from bonuses.models import Bonus
from campaigns.models import Campaign
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
    *, login: int, campaign: Campaign, deposit_amount: Decimal | None = None
) -> list[EligibilityFailure]:
    """Every rule `login` fails for `campaign` (empty: eligible). Reads the MT5 account."""
    account = read_account(login)
    return eligibility_failures(
        login=login, account=account, campaign=campaign, deposit_amount=deposit_amount
    )


def eligibility_failures(
    *,
    login: int,
    account: MT5Account | None,
    campaign: Campaign,
    deposit_amount: Decimal | None,
    now: datetime | None = None,
) -> list[EligibilityFailure]:
    """The rules against an account already read; the grant calls it again under its lock."""
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
    held = Bonus.objects.filter(login=login)
    if (
        campaign.one_per_account
        and held.filter(campaign=campaign).exclude(status=Bonus.Status.FAILED).exists()
    ):
        fail("duplicate_bonus", "The account already received this campaign's bonus.", True)
    if campaign.max_concurrent is not None:
        live = held.filter(status__in=LIVE_STATUSES).count()
        if live >= campaign.max_concurrent:
            fail(
                "max_concurrent",
                f"The account holds {live} bonuses; the campaign allows {campaign.max_concurrent}.",
                True,
            )
    return failures


def normalized_codes(codes) -> set[str]:
    """Agent codes as compared: trimmed, case-folded, blanks dropped."""
    return {str(code).strip().casefold() for code in codes or [] if str(code).strip()}
