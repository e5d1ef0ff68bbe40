"""Bonus types are a registry: the engine asks the type, and a type nobody registered raises.

Type D exists only here: registered by the test, it keeps all its credit on a partial
withdrawal (a rule it declares), so the test can see the engine ask it rather than fall
back on anyone else's rule.
"""

import ast
from collections.abc import Collection
from decimal import Decimal
from pathlib import Path

import pytest

from bonuses.models import Bonus
from bonuses.services import trigger_deposit, withdrawal_apply
from bonuses.types import (
    FORCE_CONVERT,
    LEVERAGE_OVERRIDE,
    BonusKind,
    UnknownBonusType,
    bonus_kind,
    bonus_kinds,
    register,
    unregister,
)
from campaigns.models import Campaign
from gateways.mt5 import get_mt5_gateway


class TypeD(BonusKind):
    """Keeps its whole credit on any partial withdrawal; records what the engine told it."""

    code = "D"

    def __init__(self):
        self.asked: list[tuple] = []

    def withdrawal_keeps(self, *, bonus, amount, balance_before):
        self.asked.append(("withdrawal", bonus.pk, amount, balance_before))
        return bonus.credit_remaining

    def after_activation(self, *, logins: Collection[int], together: bool) -> None:
        self.asked.append(("activated", sorted(logins), together))

    def after_credit_change(self, *, login, actor, balance, reason) -> None:
        self.asked.append(("credit_changed", login, reason))


@pytest.fixture
def type_d():
    kind = register(TypeD())
    yield kind
    unregister("D")


def test_each_campaign_type_is_registered_with_a_withdrawal_rule_of_its_own():
    codes = {kind.code for kind in bonus_kinds()}
    assert set(Campaign.BonusType.values) <= codes
    for code in Campaign.BonusType.values:
        assert type(bonus_kind(code)).withdrawal_keeps is not BonusKind.withdrawal_keeps
    assert bonus_kind("C").allows(FORCE_CONVERT) and not bonus_kind("A").allows(FORCE_CONVERT)
    assert bonus_kind("A").allows(LEVERAGE_OVERRIDE)
    assert not bonus_kind("B").allows(LEVERAGE_OVERRIDE)


def test_a_type_without_a_withdrawal_rule_has_no_silent_default():
    class Undecided(BonusKind):
        code = "U"

    with pytest.raises(NotImplementedError):
        Undecided().withdrawal_keeps(bonus=None, amount=Decimal(1), balance_before=Decimal(2))


def test_looking_up_an_unregistered_type_raises_a_clear_error():
    with pytest.raises(UnknownBonusType, match="'E' is not registered"):
        bonus_kind("E")


def test_a_test_only_type_d_is_asked_on_grant_and_withdrawal(type_d, account, campaign_factory):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="D", percentage="10")
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    assert bonus.status == Bonus.Status.ACTIVE
    assert bonus.bonus_type == "D"
    assert ("activated", [login], True) in type_d.asked

    changed = withdrawal_apply(
        login=login, amount=Decimal("400.00"), balance_before=Decimal("1000.00"), deal_id=77
    )

    assert changed == []  # it kept everything: nothing to change
    assert ("withdrawal", bonus.pk, Decimal("400.00"), Decimal("1000.00")) in type_d.asked
    bonus.refresh_from_db()
    assert bonus.credit_remaining == Decimal("100.00")
    assert get_mt5_gateway().get_accounts([login])[login].credit == Decimal("100.00")


def test_a_withdrawal_over_a_bonus_of_an_unregistered_type_raises_and_moves_nothing(
    account, campaign_factory
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="10")
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    Bonus.objects.filter(pk=bonus.pk).update(bonus_type="E")

    with pytest.raises(UnknownBonusType):
        withdrawal_apply(login=login, amount=Decimal("400.00"), balance_before=Decimal("1000.00"))

    bonus.refresh_from_db()
    assert bonus.credit_remaining == Decimal("100.00")
    assert bonus.status == Bonus.Status.ACTIVE
    assert get_mt5_gateway().get_accounts([login])[login].credit == Decimal("100.00")


ROOT = Path(__file__).resolve().parents[2]
TYPE_CODES = set(Campaign.BonusType.values)


def _product_modules():
    for package in ("bonuses", "campaigns", "operations"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text(), filename=str(path))


def test_no_product_code_compares_a_bonus_type_with_a_bare_string():
    found = []
    for path, tree in _product_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                for operand in operands:
                    elements = operand.elts if isinstance(operand, ast.Tuple) else [operand]
                    if any(isinstance(e, ast.Constant) and e.value in TYPE_CODES for e in elements):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if (
                isinstance(node, ast.keyword)
                and (node.arg or "").startswith("bonus_type")
                and isinstance(node.value, ast.Constant)
                and node.value.value in TYPE_CODES
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.value.lineno}")
    assert found == []


def test_the_ledger_knows_no_bonus_type_and_does_not_import_leverage():
    tree = ast.parse((ROOT / "bonuses/services/ledger.py").read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(module.endswith("leverage") for module in imported)
    constants = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    assert not constants & TYPE_CODES
