"""The rules a campaign's fields keep, in one place for the services, the API and the admin.

`campaign_check()` takes the whole state a campaign would have after a write and returns it
normalized (lists stripped and deduplicated, promo code stripped, money as Decimal) with every
problem found, not just the first. The services refuse a write with problems
(`CampaignInvalid`, a 400 whose body names each field like DRF does); the admin form shows
the same problems next to its fields.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone

from core.errors import ApplicationError
from core.money import NumberFormatError, parse_decimal, parse_int

from .models import Campaign

# What a caller may set; status only moves through campaign_set_status().
EDITABLE_FIELDS: tuple[str, ...] = (
    "name",
    "description",
    "bonus_type",
    "percentage",
    "max_bonus",
    "min_deposit",
    "max_deposit",
    "trigger_type",
    "promo_code",
    "agent_codes",
    "target_groups",
    "target_countries",
    "one_per_account",
    "max_concurrent",
    "bonus_expiry_days",
    "convert_per_lot",
    "fixed_amount",
    "stacking",
    "priority",
    "starts_at",
    "ends_at",
)
LIST_FIELDS: tuple[str, ...] = ("agent_codes", "target_groups", "target_countries")
# Numbers from outside are plain ASCII (core.money): "1_000", "1e2", full-width digits and
# NaN are refused here too, whoever calls (the API, the admin, a command).
DECIMAL_FIELDS: tuple[str, ...] = (
    "percentage",
    "max_bonus",
    "min_deposit",
    "max_deposit",
    "convert_per_lot",
    "fixed_amount",
)
COUNT_FIELDS: tuple[str, ...] = ("max_concurrent", "bonus_expiry_days", "priority")
PRIORITY_MAX = 1000
LIST_ITEM_MAX_LENGTH = 128
LIST_MAX_ITEMS = 500
# Clients type promo codes: letters, digits, "-" and "_" only, so that "matched
# case-insensitively" means the same thing in Python, SQLite and PostgreSQL.
PROMO_CODE_RE = re.compile(r"^[A-Za-z0-9_-]+$")
PROMO_CODE_CONSTRAINT = "campaign_promo_code_unique_live"
PERCENTAGE_MAX = Decimal(1000)


@dataclass(frozen=True)
class Problem:
    """One broken rule: the field it is about, a machine code and a sentence for people."""

    field: str
    code: str
    message: str


class CampaignInvalid(ApplicationError):
    """400: the body names each field with its messages, as DRF's field errors do.

    `code` is the broken rule's code when there is one (`promo_code_taken`, ...), else
    `invalid`.
    """

    status_code = 400
    code = "invalid"

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        errors: dict[str, list[str]] = {}
        for problem in self.problems:
            errors.setdefault(problem.field, []).append(problem.message)
        codes = {problem.code for problem in self.problems}
        super().__init__(
            "Check the fields: " + ", ".join(errors) + ".",
            code=codes.pop() if len(codes) == 1 else "invalid",
            extra=errors,
        )


def promo_code_taken(code: str, *, exclude_pk: int | None = None) -> bool:
    """Whether a non-archived campaign (other than `exclude_pk`) holds `code`, in any case."""
    campaigns = Campaign.objects.exclude(status=Campaign.Status.ARCHIVED).alias(
        code_lower=Lower("promo_code")
    )
    if exclude_pk is not None:
        campaigns = campaigns.exclude(pk=exclude_pk)
    # Both sides lowered by the database, as the unique index does.
    return campaigns.filter(code_lower=Lower(Value(code))).exists()


def is_promo_code_clash(exc: Exception) -> bool:
    """Whether an IntegrityError is the live promo-code index refusing a second holder."""
    return PROMO_CODE_CONSTRAINT in str(exc)


def _default(name: str) -> Any:
    field = Campaign._meta.get_field(name)
    assert isinstance(field, models.Field)  # an editable field is a column, not a relation
    return field.get_default()


def campaign_check(
    values: Mapping[str, Any], *, pk: int | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """Normalize a campaign's full editable state and list every rule it breaks."""
    # What is not given takes the model's default, as a new row would.
    values = {name: values[name] if name in values else _default(name) for name in EDITABLE_FIELDS}
    problems: list[Problem] = []

    values["promo_code"] = _promo_code(values["promo_code"])
    for name in LIST_FIELDS:
        values[name], found = _string_list(name, values[name])
        problems += found
    for name, empty in (("description", ""), ("min_deposit", Decimal(0))):
        if values[name] is None:
            values[name] = empty

    values, number_problems = _strict_numbers(values)
    problems += number_problems

    # The model's own field checks (required, choices, lengths, digits) and conversions.
    instance = Campaign(**values)
    try:
        instance.full_clean(
            exclude=[problem.field for problem in number_problems],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as exc:
        for field, errors in exc.error_dict.items():
            problems += [
                Problem(field, error.code or "invalid", message)
                for error in errors
                for message in error.messages
            ]
    values = {name: getattr(instance, name) for name in EDITABLE_FIELDS}
    for name in ("starts_at", "ends_at"):
        if values[name] is not None and timezone.is_naive(values[name]):
            problems.append(Problem(name, "naive_datetime", "Must include a timezone."))
    failed = {problem.field for problem in problems}
    # The rules read only values that passed the field checks.
    checked = {name: None if name in failed else value for name, value in values.items()}
    problems += [p for p in _rule_problems(checked, pk=pk) if p.field not in failed]
    return values, problems


def campaign_validate(values: Mapping[str, Any], *, pk: int | None = None) -> dict[str, Any]:
    """Return the campaign's state normalized, or raise `CampaignInvalid` with every problem."""
    clean, problems = campaign_check(values, pk=pk)
    if problems:
        raise CampaignInvalid(problems)
    return clean


def _strict_numbers(values: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The decimal and count fields parsed strictly; a value that is no plain number is a
    problem (`invalid_number`), and the model's own checks skip that field."""
    values = dict(values)
    problems: list[Problem] = []
    for name in (*DECIMAL_FIELDS, *COUNT_FIELDS):
        if values[name] is None or values[name] == "":
            continue
        try:
            if name in COUNT_FIELDS:
                values[name] = parse_int(values[name])
            else:
                field = Campaign._meta.get_field(name)
                assert isinstance(field, models.DecimalField)  # DECIMAL_FIELDS are
                values[name] = parse_decimal(values[name], max_decimal_places=field.decimal_places)
        except NumberFormatError as exc:
            problems.append(Problem(name, "invalid_number", str(exc)))
    return values, problems


def _promo_code(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _string_list(field: str, value: Any) -> tuple[Any, list[Problem]]:
    if value is None:
        return [], []
    if not isinstance(value, list | tuple):
        return value, [Problem(field, "not_a_list", "Must be a list of strings.")]
    items: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            return value, [Problem(field, "invalid_item", "Each item must be a non-empty text.")]
        item = item.strip()
        if len(item) > LIST_ITEM_MAX_LENGTH:
            message = f"Each item must be at most {LIST_ITEM_MAX_LENGTH} characters."
            return value, [Problem(field, "item_too_long", message)]
        if item not in items:
            items.append(item)
    if len(items) > LIST_MAX_ITEMS:
        return value, [Problem(field, "too_many_items", f"At most {LIST_MAX_ITEMS} items.")]
    return items, []


def _rule_problems(values: dict[str, Any], *, pk: int | None) -> list[Problem]:
    types, triggers = Campaign.BonusType, Campaign.TriggerType
    problems: list[Problem] = []

    def refuse(field: str, code: str, message: str) -> None:
        problems.append(Problem(field, code, message))

    percentage = values["percentage"]
    if percentage is not None and not (0 < percentage <= PERCENTAGE_MAX):
        refuse("percentage", "percentage_range", "Must be more than 0 and at most 1000.")
    min_deposit, max_deposit = values["min_deposit"], values["max_deposit"]
    if min_deposit is not None and min_deposit < 0:
        refuse("min_deposit", "negative", "Cannot be negative.")
    if None not in (min_deposit, max_deposit) and max_deposit < min_deposit:
        refuse("max_deposit", "deposit_range", "Must be at least min_deposit.")
    for name in ("max_bonus", "convert_per_lot", "fixed_amount"):
        if values[name] is not None and values[name] <= 0:
            refuse(name, "not_positive", "Must be more than 0 (or empty).")

    if values["bonus_type"] == types.C and values["convert_per_lot"] is None:
        refuse("convert_per_lot", "convert_per_lot_required", "Type C campaigns need it.")
    if values["trigger_type"] == triggers.REGISTRATION and values["fixed_amount"] is None:
        refuse("fixed_amount", "fixed_amount_required", "Registration campaigns need it.")
    if values["trigger_type"] == triggers.AGENT_CODE and not values["agent_codes"]:
        refuse("agent_codes", "agent_codes_required", "Agent-code campaigns need at least one.")

    code = values["promo_code"]
    if values["trigger_type"] == triggers.PROMO_CODE and not code:
        refuse("promo_code", "promo_code_required", "Promo-code campaigns need a promo code.")
    elif code and values["trigger_type"] != triggers.PROMO_CODE:
        refuse(
            "promo_code", "promo_code_unexpected", "Only promo-code campaigns carry a promo code."
        )
    elif code and not PROMO_CODE_RE.match(code):
        refuse("promo_code", "promo_code_format", "Use letters, digits, '-' and '_' only.")
    elif code and promo_code_taken(code, exclude_pk=pk):
        refuse("promo_code", "promo_code_taken", "Another campaign already uses this code.")

    priority = values["priority"]
    if priority is not None and not (0 <= priority <= PRIORITY_MAX):
        refuse("priority", "priority_range", f"Must be from 0 to {PRIORITY_MAX}.")
    for name in ("max_concurrent", "bonus_expiry_days"):
        if values[name] == 0:
            refuse(name, "zero", "Must be at least 1 (or empty for no limit).")
    starts_at, ends_at = values["starts_at"], values["ends_at"]
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        refuse("ends_at", "ends_before_start", "Must be after starts_at.")
    return problems
