"""Many callers at once on one account (PostgreSQL: real row and advisory locks)."""

import threading
from decimal import Decimal

import pytest

from bonuses.models import Bonus, Conversion, CreditIntent
from bonuses.services import (
    bonus_cancel,
    intents_resolve,
    trade_deal_convert,
    trigger_deposit,
)
from core.errors import ConflictError
from gateways.mt5 import get_mt5_gateway
from tests.concurrency import run_at_once as at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 10


def server(login):
    return get_mt5_gateway().get_accounts([login])[login]


def run_at_once(work) -> tuple[list, list]:
    """Run `work()` in THREADS threads released together; return (results, errors)."""
    return at_once(lambda _: work(), threads=THREADS)


def test_the_same_trade_deal_from_10_threads_converts_once(account, campaign_factory):
    login = account(balance="400.00")
    campaign_factory(bonus_type="C", percentage="50", convert_per_lot="10.00")
    trigger_deposit(login=login, amount=Decimal("400.00"))

    results, errors = run_at_once(
        lambda: trade_deal_convert(login=login, deal_ticket=42, lots=Decimal("5.00"))
    )

    assert errors == []
    assert sorted(len(result) for result in results) == [0] * (THREADS - 1) + [1]
    assert Conversion.objects.count() == 1
    assert server(login).credit == Decimal("150.00")
    assert server(login).balance == Decimal("450.00")


def test_one_bonus_cancelled_from_10_threads_is_cancelled_once(account, campaign_factory):
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50")
    [bonus] = trigger_deposit(login=login, amount=Decimal("1000.00"))

    results, errors = run_at_once(lambda: bonus_cancel(bonus=bonus))

    assert len(results) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, ConflictError) and e.code == "bonus_not_active" for e in errors)
    assert CreditIntent.objects.filter(kind="credit_out").count() == 1
    assert server(login).credit == 0
    assert server(login).leverage == 500


def test_resolvers_running_beside_the_grants_never_credit_twice(
    account, campaign_factory, deposit_deal
):
    logins = [account(balance="1000.00") for _ in range(THREADS // 2)]
    deals = [deposit_deal(login) for login in logins]
    campaign_factory(bonus_type="B", percentage="50", one_per_account=False)
    turn = iter(range(THREADS))
    lock = threading.Lock()

    def work():
        with lock:
            n = next(turn)
        if n % 2:
            return intents_resolve()
        return trigger_deposit(
            login=logins[n // 2], amount=Decimal("1000.00"), deal_id=deals[n // 2]
        )

    _, errors = run_at_once(work)
    intents_resolve()

    assert errors == []
    assert Bonus.objects.filter(status="active").count() == len(logins)
    for login in logins:
        assert server(login).credit == Decimal("500.00")


def test_no_gateway_call_is_ever_made_inside_a_database_transaction(
    faulty_mt5, account, campaign_factory
):
    from bonuses.services import (
        bonus_force_convert,
        bonus_override_leverage,
        bonuses_expire_due,
        credit_reconcile,
        drawdown_apply,
        withdrawal_apply,
    )
    from gateways.errors import UnknownOutcomeError

    faulty_mt5.forbid_transactions = True
    login = account(balance="1000.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50", one_per_account=False, stacking="stackable")
    campaign_factory(bonus_type="C", percentage="20", convert_per_lot="10.00", stacking="stackable")
    faulty_mt5.fail_next("post_credit", UnknownOutcomeError, after_write=True)
    bonuses = {b.bonus_type: b for b in trigger_deposit(login=login, amount=Decimal("1000"))}
    intents_resolve()
    bonus_override_leverage(bonus=bonuses["A"], leverage=200)
    trade_deal_convert(login=login, deal_ticket=1, lots=Decimal("2"))
    withdrawal_apply(login=login, amount=Decimal("100"), balance_before=Decimal("1020"))
    trigger_deposit(login=login, amount=Decimal("1000"))
    ticket = faulty_mt5.open_position(login, symbol="EURUSD", side="buy", volume="1")
    faulty_mt5.set_position_profit(ticket, "-5000")
    drawdown_apply(login=login)
    bonuses_expire_due()
    credit_reconcile()
    with pytest.raises(ConflictError):
        bonus_force_convert(bonus=bonuses["C"])

    assert faulty_mt5.calls["post_credit"] >= 4
    assert faulty_mt5.calls_inside_transactions == []
    assert server(login).credit == 0
