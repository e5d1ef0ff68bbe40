"""Type A's leverage stack: grant, stacking, restore, a dealer's hand, override, withdrawal."""

from decimal import Decimal

import pytest

from accounts.models import AuditEvent
from bonuses.models import Bonus, LeverageState
from bonuses.services import (
    bonus_cancel,
    bonus_override_leverage,
    trigger_deposit,
    withdrawal_apply,
)
from core.errors import ApplicationError, ConflictError
from gateways.mt5 import get_mt5_gateway


def server(login):
    return get_mt5_gateway().get_accounts([login])[login]


@pytest.fixture
def type_a(campaign_factory):
    return campaign_factory(bonus_type="A", percentage="50", one_per_account=False)


def test_cancelling_the_only_type_a_bonus_restores_1_500(account, type_a):
    login = account(balance="1000.00", leverage=500)
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    assert server(login).leverage == 333

    bonus = bonus_cancel(bonus=bonus, reason="client asked")

    assert bonus.status == Bonus.Status.CANCELLED
    assert bonus.credit_remaining == 0
    assert bonus.leverage_restored_at is not None
    assert server(login).leverage == 500
    assert server(login).credit == 0
    assert not LeverageState.objects.filter(login=login).exists()


def test_two_type_a_bonuses_restore_the_leverage_only_after_both_end(account, mt5, type_a):
    login = account(balance="1000.00", leverage=500)
    [first] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    mt5.post_balance(login, Decimal("1000.00"), comment="second deposit")
    [second] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    # 1,000.00 of Type A credit on 2,000.00 of balance: floor(500 / 1.5)
    assert server(login).leverage == 333
    assert server(login).credit == Decimal("1000.00")

    bonus_cancel(bonus=first)
    assert server(login).leverage == 333  # one Type A bonus still holds credit
    assert LeverageState.objects.get(login=login).original_leverage == 500

    bonus_cancel(bonus=second)
    assert server(login).leverage == 500
    assert server(login).credit == 0


def test_the_stack_follows_the_total_type_a_credit(account, mt5, campaign_factory):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="100", one_per_account=False)
    trigger_deposit(login=login, amount=Decimal("1000.00"))  # 1,000 credit on 1,000: 1:250
    assert server(login).leverage == 250
    mt5.post_balance(login, Decimal("1000.00"), comment="second deposit")

    trigger_deposit(login=login, amount=Decimal("1000.00"))

    # 2,000.00 of Type A credit on 2,000.00 of balance: floor(500 / 2)
    assert server(login).leverage == 250
    assert set(Bonus.objects.values_list("adjusted_leverage", flat=True)) == {250}


def test_a_leverage_changed_by_a_dealer_is_left_alone_and_recorded(account, mt5, type_a):
    login = account(balance="1000.00", leverage=500)
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    mt5.set_leverage(login, 200)  # a dealer, by hand

    bonus_cancel(bonus=bonus)

    assert server(login).leverage == 200
    event = AuditEvent.objects.get(object_id=str(bonus.pk), action="bonus.leverage_left")
    assert event.after["leverage"] == {"expected": 333, "server": 200}
    assert not LeverageState.objects.filter(login=login).exists()


def test_an_override_wins_until_the_stack_ends(account, mt5, type_a, make_user):
    admin = make_user()
    login = account(balance="1000.00", leverage=500)
    [first] = trigger_deposit(login=login, amount=Decimal("1000.00"))

    first = bonus_override_leverage(bonus=first, leverage=100, actor=admin)
    assert first.adjusted_leverage == 100
    assert server(login).leverage == 100
    mt5.post_balance(login, Decimal("1000.00"), comment="second deposit")
    [second] = trigger_deposit(login=login, amount=Decimal("1000.00"))
    assert server(login).leverage == 100  # a new grant does not undo the override

    bonus_cancel(bonus=first)
    assert server(login).leverage == 100
    bonus_cancel(bonus=second)
    assert server(login).leverage == 500
    event = AuditEvent.objects.get(object_id=str(first.pk), action="bonus.leverage_overridden")
    assert event.actor_id == admin.pk


def test_override_refuses_other_types_bad_leverage_and_ended_bonuses(account, campaign_factory):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", percentage="10", stacking="stackable")
    campaign_factory(bonus_type="A", percentage="10", stacking="stackable")
    bonuses = {b.bonus_type: b for b in trigger_deposit(login=login, amount=Decimal("1000"))}

    with pytest.raises(ConflictError) as raised:
        bonus_override_leverage(bonus=bonuses["B"], leverage=100)
    assert raised.value.code == "not_type_a"
    with pytest.raises(ApplicationError) as raised:
        bonus_override_leverage(bonus=bonuses["A"], leverage=0)
    assert raised.value.code == "invalid_leverage"
    bonus_cancel(bonus=bonuses["A"])
    with pytest.raises(ConflictError) as raised:
        bonus_override_leverage(bonus=bonuses["A"], leverage=100)
    assert raised.value.code == "bonus_not_active"


def test_a_partial_withdrawal_recomputes_the_leverage_from_the_remaining_credit(
    account, mt5, campaign_factory
):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="100")
    trigger_deposit(login=login, amount=Decimal("1000.00"))  # 1:250
    mt5.post_balance(login, Decimal("1000.00"), comment="more")  # balance 2,000.00
    mt5.post_balance(login, Decimal("-500.00"), comment="withdrawal")

    [bonus] = withdrawal_apply(
        login=login, amount=Decimal("500.00"), balance_before=Decimal("2000.00")
    )

    # keeps 1,000 * (1 - 0.25) = 750.00; floor(500 / (750 / 1,500 + 1)) = 333
    assert bonus.credit_remaining == Decimal("750.00")
    assert server(login).credit == Decimal("750.00")
    assert server(login).leverage == 333
    assert bonus.adjusted_leverage == 333


def test_a_first_grant_takes_the_original_from_the_server(account, type_a):
    login = account(balance="1000.00", leverage=200)

    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))

    state = LeverageState.objects.get(login=login)
    assert (state.original_leverage, state.applied_leverage) == (200, 133)
    assert bonus.original_leverage == 200
