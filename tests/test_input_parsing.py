"""Issue 14, bad input, unit by unit: the strict number grammar (`core.money`), the depth scan
and text check of the JSON parser (`core.parsers`), and the admin forms that take money.

The API-level attacks are in tests/api/test_input_guards.py.
"""

import json
from decimal import Decimal

import pytest

from core.money import (
    MoneyField,
    NumberFormatError,
    StrictDecimalField,
    StrictIntegerField,
    parse_decimal,
    parse_int,
    parse_money,
)
from core.parsers import JSONFloat, json_depth, text_problem


def json_value(text: str):
    """A value as the API's JSON parser hands it over (JSON numbers keep their text)."""
    return json.loads(text, parse_float=JSONFloat.from_text)


REFUSED = [
    "1_000",
    "1e2",
    "1E2",
    "\uff11\uff12",  # full-width 12
    "\u0663",  # Arabic-Indic 3
    "\u0661\u0662.\u0663\u0664",
    " 12",
    "12 ",
    "12.",
    ".5",
    "1.234",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "0x10",
    "+5",
    "--5",
    "1,000",
    "",
    "1" * 41,
    True,
    False,
    None,
    [],
    {},
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("1E+2"),
    float("nan"),
    1e16,  # repr "1e+16"
    0.1 + 0.2,  # repr "0.30000000000000004": more than two decimals
    json_value("1e2"),
    json_value("5.005e2"),
    json_value("1.234"),
]


@pytest.mark.parametrize("value", REFUSED, ids=repr)
def test_parse_money_refuses_everything_but_plain_ascii_decimals(value):
    with pytest.raises(NumberFormatError):
        parse_money(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500", Decimal("500")),
        ("500.00", Decimal("500.00")),
        ("0.5", Decimal("0.5")),
        ("-3.25", Decimal("-3.25")),
        ("007", Decimal("7")),
        (500, Decimal("500")),
        (json_value("500.5"), Decimal("500.5")),
        (json_value("-0.01"), Decimal("-0.01")),
        (Decimal("12.30"), Decimal("12.30")),
        (10.5, Decimal("10.5")),
    ],
    ids=repr,
)
def test_parse_money_takes_plain_decimals_and_json_numbers(value, expected):
    assert parse_money(value) == expected


def test_parse_decimal_counts_the_decimals_it_is_told():
    assert parse_decimal("1.123456", max_decimal_places=6) == Decimal("1.123456")
    with pytest.raises(NumberFormatError, match="At most 6 decimal places"):
        parse_decimal("1.1234567", max_decimal_places=6)
    with pytest.raises(NumberFormatError):
        parse_decimal("1.5", max_decimal_places=0)


@pytest.mark.parametrize(
    "value", [*REFUSED, "12.0", "12.5", 12.0, json_value("12.0"), "1" * 41], ids=repr
)
def test_parse_int_refuses_everything_but_ascii_digits(value):
    with pytest.raises(NumberFormatError):
        parse_int(value)


@pytest.mark.parametrize(
    ("value", "expected"), [("30", 30), (30, 30), ("-4", -4), (2**63 - 1, 2**63 - 1)]
)
def test_parse_int_takes_digits_and_json_integers(value, expected):
    assert parse_int(value) == expected


def test_the_drf_fields_answer_a_field_error_and_keep_their_bounds():
    from rest_framework import serializers

    class Probe(serializers.Serializer):
        money = MoneyField(min_value=Decimal("0.01"))
        rate = StrictDecimalField(max_digits=7, decimal_places=2)
        days = StrictIntegerField(min_value=1, max_value=36500)

    good = Probe(data={"money": "10.50", "rate": 12.5, "days": "30"})
    assert good.is_valid(), good.errors
    assert good.validated_data == {"money": Decimal("10.50"), "rate": Decimal("12.50"), "days": 30}

    bad = Probe(data={"money": "1_000", "rate": "1e2", "days": "\uff13\uff10"})
    assert not bad.is_valid()
    assert set(bad.errors) == {"money", "rate", "days"}
    assert bad.errors["money"][0].code == "strict"

    bounds = Probe(data={"money": "0", "rate": "123456.00", "days": 40000})
    assert not bounds.is_valid()
    assert set(bounds.errors) == {"money", "rate", "days"}


# --- The JSON parser's scan and check -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[[[[["}', 1),  # brackets inside strings do not count
        ('["\\"[[[[", "]]]"]', 1),  # nor after an escaped quote
        ('["\\\\", [[]]]', 3),  # an escaped backslash ends before the quote
        ("[" * 50 + "]" * 50, 50),
        ("[[]" * 10 + "]" * 10, 11),  # siblings do not add up
    ],
)
def test_json_depth_counts_only_brackets_outside_strings(text, depth):
    assert json_depth(text, limit=100) == depth


def test_json_depth_stops_as_soon_as_it_passes_the_limit():
    assert json_depth("[" * 1_000_000, limit=32) == 33


def test_json_depth_of_an_unterminated_string_is_linear_and_final():
    # Each escaped quote would restart a naive string pattern: this must not be quadratic.
    assert json_depth('["' + '\\"' * 500_000, limit=32) == 1


@pytest.mark.parametrize(
    "data",
    ["a\x00b", ["ok", {"k": "\x00"}], {"\x00": 1}, {"k": ["x", ["\ud800"]]}],
    ids=repr,
)
def test_text_problem_finds_nul_and_lone_surrogates_anywhere(data):
    assert text_problem(data) is not None


def test_text_problem_lets_ordinary_text_through():
    assert text_problem({"name": "caf\u00e9 \U0001f600\n\t", "n": [1, 2.5, None, True]}) is None


# --- The admin forms ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("percentage", "1_000"),
        ("percentage", "1e2"),
        ("min_deposit", "\uff11\uff12"),
        ("max_bonus", "1.234"),
        ("bonus_expiry_days", "\u0663"),
        ("max_concurrent", "1_0"),
    ],
)
def test_the_campaign_admin_form_refuses_numbers_that_are_not_plain(field, value):
    from campaigns.forms import CampaignAdminForm

    data = {
        "name": "Form",
        "bonus_type": "B",
        "percentage": "50",
        "min_deposit": "0",
        "trigger_type": "auto_deposit",
    }
    form = CampaignAdminForm(data={**data, field: value})
    assert not form.is_valid()
    assert field in form.errors

    good = CampaignAdminForm(data={**data, "bonus_expiry_days": " 30 "})
    assert good.is_valid(), good.errors
    assert good.cleaned_data["bonus_expiry_days"] == 30


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"), [("login", "\uff11\uff12"), ("deal_id", "1_2"), ("deposit_amount", "1e2")]
)
def test_the_bonus_assign_page_refuses_numbers_that_are_not_plain(field, value):
    from bonuses.admin_views import AssignForm

    form = AssignForm(data={"login": "1001", field: value})
    assert not form.is_valid()
    assert field in form.errors


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["1_000", "1e2", "\uff11\uff10", "NaN", Decimal("1E+2")])
def test_a_campaign_written_by_any_caller_takes_only_plain_numbers(value, make_user):
    from campaigns.services import campaign_create
    from campaigns.validation import CampaignInvalid

    with pytest.raises(CampaignInvalid) as refused:
        campaign_create(actor=make_user(), name="Service", bonus_type="B", percentage=value)
    assert "percentage" in refused.value.extra


@pytest.mark.parametrize("value", ["1_0", "\uff13\uff10", "3e1"])
def test_the_license_admin_form_takes_plain_day_counts(value):
    from licensing.admin import LicenseAddForm

    form = LicenseAddForm(data={"duration_days": value})
    form.is_valid()
    assert "duration_days" in form.errors
