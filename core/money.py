"""Money and numbers from outside, parsed strictly: one grammar for the API and the admin.

Python is generous where money must not be: `Decimal("1_000")`, `Decimal("1e2")`, full-width
digits (`Decimal("\\uff11\\uff12")`) and Arabic-Indic ones (`int("\\u0663")`) all succeed,
and DRF's and Django's number fields inherit that (a campaign at 1000% from `"1_000"`).
Here a number is ASCII digits, an optional minus sign and, for decimals, a dot and at most N
decimals:

- accepted: `"500"`, `"500.00"`, `"-3.5"`, and the JSON numbers `500` and `500.5` (written
  plainly: `core.parsers.JSONParser` keeps each JSON number's source text);
- refused: exponents (`"1e2"` and the JSON number `1e2`), underscores, non-ASCII digits,
  `"+5"`, `" 12"`, `"12."`, `".5"`, `"0x10"`, too many decimals, NaN, Infinity, booleans.

`parse_money`, `parse_decimal` and `parse_int` raise `NumberFormatError` (a ValueError). The
DRF fields (`MoneyField`, `StrictDecimalField`, `StrictIntegerField`, and
`StrictNumbersMixin` for ModelSerializers) and the form fields turn it into a field error.
Form fields (typed by staff in the admin) trim surrounding spaces first, as Django's do.
"""

import re
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from rest_framework import serializers

MONEY_PLACES = 2
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# PostgreSQL's bigint: the largest id, login or deal ticket a column holds.
MAX_BIGINT = 2**63 - 1
# Longer than any column holds (18 digits, a sign and a dot): refused before any conversion.
MAX_NUMBER_LENGTH = 40
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"-?[0-9]+(?:\.([0-9]+))?", re.ASCII)


def cents_down(value: Decimal) -> Decimal:
    """`value` to whole cents, rounded toward zero: a client is never credited a part-cent."""
    return Decimal(value).quantize(CENT, rounding=ROUND_DOWN)


class NumberFormatError(ValueError):
    """Not a plain ASCII number of the expected kind; the message says what is wanted."""


def number_text(value: Any) -> str | None:
    """The source text of a number as it came in, or None when `value` is not one.

    Strings are taken as they are; JSON numbers parsed by `core.parsers.JSONParser` carry
    their text (`raw`); other ints and Decimals are written out; a bare float is its repr
    (so 1e16 is `1e+16` and refused). Booleans are not numbers here.
    """
    if isinstance(value, bool):
        return None
    raw = getattr(value, "raw", None)
    if isinstance(raw, str):
        return raw
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    return None


def parse_decimal(value: Any, *, max_decimal_places: int) -> Decimal:
    """A plain decimal with at most `max_decimal_places` decimals, as a Decimal."""
    text = number_text(value)
    if text is None or len(text) > MAX_NUMBER_LENGTH:
        raise NumberFormatError(_decimal_message(max_decimal_places))
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise NumberFormatError(_decimal_message(max_decimal_places))
    decimals = match.group(1) or ""
    if len(decimals) > max_decimal_places:
        raise NumberFormatError(f"At most {max_decimal_places} decimal places.")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # cannot happen after the match; refuse all the same
        raise NumberFormatError(_decimal_message(max_decimal_places)) from exc


def parse_money(value: Any) -> Decimal:
    """Money: a plain decimal with at most two decimals (`"500"`, `"500.00"`)."""
    return parse_decimal(value, max_decimal_places=MONEY_PLACES)


def parse_int(value: Any) -> int:
    """An integer: ASCII digits with an optional minus sign, or a JSON integer."""
    text = number_text(value)
    if text is None or len(text) > MAX_NUMBER_LENGTH or not _INTEGER.fullmatch(text):
        raise NumberFormatError("Must be a whole number written with digits 0-9, like 30.")
    return int(text)


def _decimal_message(places: int) -> str:
    if places == 0:
        return "Must be a whole number written with digits 0-9, like 30."
    example = "500." + "0" * places
    return (
        f'Must be a plain number with at most {places} decimal places, like "{example}" '
        "(digits 0-9 and a dot: no exponent, underscore, sign '+' or spaces)."
    )


# --- DRF fields ------------------------------------------------------------------------------


class StrictDecimalField(serializers.DecimalField):
    """DRF's DecimalField with the strict grammar: at most `decimal_places` decimals in."""

    default_error_messages = {"strict": "{message}"}

    def to_internal_value(self, data):
        try:
            value = parse_decimal(data, max_decimal_places=self.decimal_places or 0)
        except NumberFormatError as exc:
            self.fail("strict", message=str(exc))
        # DRF's own checks from here: max_digits, quantizing; min/max run as validators.
        return super().to_internal_value(str(value))


class MoneyField(StrictDecimalField):
    """Money in: a plain decimal string (or plain JSON number) with at most two decimals."""

    def __init__(self, *, max_digits: int | None = 14, **kwargs):
        kwargs.setdefault("decimal_places", MONEY_PLACES)
        super().__init__(max_digits=max_digits, **kwargs)


class StrictIntegerField(serializers.IntegerField):
    """DRF's IntegerField with the strict grammar: day counts, leverage, logins, ids."""

    default_error_messages = {"strict": "{message}"}

    def to_internal_value(self, data):
        try:
            return parse_int(data)
        except NumberFormatError as exc:
            self.fail("strict", message=str(exc))


class StrictNumbersMixin:
    """For ModelSerializers: the model's decimal and integer columns map to the strict
    fields instead of DRF's lenient ones (declared fields are left as declared)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: StrictDecimalField,
        models.IntegerField: StrictIntegerField,
        models.BigIntegerField: StrictIntegerField,
        models.SmallIntegerField: StrictIntegerField,
        models.PositiveIntegerField: StrictIntegerField,
        models.PositiveSmallIntegerField: StrictIntegerField,
        models.PositiveBigIntegerField: StrictIntegerField,
    }


# --- Django form fields (the admin) ----------------------------------------------------------


class StrictDecimalFormField(forms.DecimalField):
    """Django's DecimalField with the strict grammar (surrounding spaces trimmed)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, str):
            value = value.strip()
        try:
            parsed = parse_decimal(value, max_decimal_places=self.decimal_places or 0)
        except NumberFormatError as exc:
            raise ValidationError(str(exc), code="invalid") from exc
        return super().to_python(str(parsed))


class MoneyFormField(StrictDecimalFormField):
    """Money typed in the admin: at most two decimals."""

    def __init__(self, *, max_digits: int | None = 14, decimal_places: int | None = 2, **kwargs):
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)


class StrictIntegerFormField(forms.IntegerField):
    """Django's IntegerField with the strict grammar (surrounding spaces trimmed)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, str):
            value = value.strip()
        try:
            return parse_int(value)
        except NumberFormatError as exc:
            raise ValidationError(str(exc), code="invalid") from exc
