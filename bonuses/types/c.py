"""Type C, convertible: trading converts its credit into balance (`trade_deal_convert`,
`lots_required` lots convert it all); any withdrawal takes all its unconverted credit; staff
may force-convert it."""

from collections.abc import Collection
from decimal import ROUND_UP, Decimal

from campaigns.models import Campaign
from core.money import CENT, ZERO

from . import FORCE_CONVERT, BonusKind, register


class TypeC(BonusKind):
    code = Campaign.BonusType.C
    actions = frozenset({FORCE_CONVERT})
    converts = True
    report = "conversions"

    def lots_required(self, *, campaign: Campaign, amount: Decimal) -> Decimal | None:
        if not campaign.convert_per_lot:
            return None
        # Rounded up: trading `lots_required` lots always converts the whole amount.
        return (amount / campaign.convert_per_lot).quantize(CENT, rounding=ROUND_UP)

    def withdrawal_keeps(self, *, bonus, amount: Decimal, balance_before: Decimal) -> Decimal:
        return ZERO  # a withdrawal takes all its unconverted credit

    def after_activation(self, *, logins: Collection[int], together: bool) -> None:
        """Nothing follows: conversion waits for trades."""

    def after_credit_change(
        self, *, login: int, actor, balance: Decimal | None, reason: str
    ) -> None:
        """Nothing follows."""


register(TypeC())
