"""Attacks on the batch grant path (`trigger_deposits`, `operations_execute_many`,
`leverage_sync_many`): what a client or the staff would see that the one-by-one path never
showed them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AccountEvent
from accounts.services import audit_verify, monitor_sweep
from bonuses.models import Bonus, LeverageState
from bonuses.services import bonus_override_leverage
from gateways.models import SimulatedMT5Account
from tests.bonuses.conftest import deposited_accounts

pytestmark = pytest.mark.django_db


def _server_leverage(login: int) -> int:
    return SimulatedMT5Account.objects.get(pk=login).leverage


def test_an_override_made_while_a_batch_sends_its_leverages_is_not_undone_by_a_stale_write(
    campaign_factory, faulty_mt5, monkeypatch
):
    """A Super Admin overrides B's leverage while the batch is still sending the leverages
    its grants called for (A's first). The one-by-one path checked, just before sending, that
    no later leverage write of the login existed; the batch judged that once, before sending
    any, so B's stale 1:200 goes out after the override's 1:100 and the override is lost."""
    campaign_factory(bonus_type="A", percentage="50")
    first, second = deposited_accounts(2)  # 1:300, 200.00 deposit -> 100.00 -> 1:200
    real = type(faulty_mt5).set_leverage
    overridden = []

    def set_leverage(self, login, leverage):
        # While another account's leverage is being sent, B's bonus already active.
        active = Bonus.objects.filter(login=second, status="active").first()
        if login != second and active is not None and not overridden:
            overridden.append(login)
            bonus_override_leverage(bonus=active, leverage=100)
        return real(self, login, leverage)

    monkeypatch.setattr(type(faulty_mt5), "set_leverage", set_leverage)

    monitor_sweep()

    assert overridden == [first]
    assert _server_leverage(first) == 200
    state = LeverageState.objects.get(login=second)
    assert state.override_leverage == 100
    assert _server_leverage(second) == 100  # the override wins while the stack lasts
    assert state.applied_leverage == 100


def test_a_bug_in_one_accounts_leverage_leaves_the_other_grants_leverage_set(
    campaign_factory, monkeypatch
):
    """One account's leverage adjustment raising (a bug on one account) must not leave the
    other Type A accounts of the batch at their full leverage with the credit on them: the
    one-by-one path adjusted each account after its own credit, whatever the others did."""
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(3)
    bad = logins[1]
    import bonuses.services.leverage as leverage

    real = leverage._adjusted

    def broken(bonus, *args, **kwargs):
        if bonus.login == bad:
            raise RuntimeError("a bug on one account")
        return real(bonus, *args, **kwargs)

    monkeypatch.setattr(leverage, "_adjusted", broken)

    monitor_sweep()

    assert set(Bonus.objects.values_list("status", flat=True)) == {"active"}
    good = [login for login in logins if login != bad]
    assert [_server_leverage(login) for login in good] == [200, 200]
    assert audit_verify().intact


def test_a_settlement_part_that_fails_leaves_the_parts_settled_before_it_with_their_leverage(
    campaign_factory, monkeypatch
):
    """Outcomes settle ACCOUNTS_PER_TRANSACTION a transaction (one account a part here, as if
    each part were 200): the first part commits, its Type A bonus active; the second raises.
    The first account then keeps its full 1:300 leverage with the bonus credit on it for
    good: nothing syncs an active bonus's leverage again (the events are done on retry, the
    resolver finds its intent done)."""
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(3)
    bad = logins[1]
    import bonuses.services.ledger as ledger

    monkeypatch.setattr(ledger, "ACCOUNTS_PER_TRANSACTION", 1)
    real = ledger.bonus_event

    def broken(*, bonus, **kwargs):
        if bonus.login == bad:
            raise RuntimeError("a bug on one account")
        return real(bonus=bonus, **kwargs)

    monkeypatch.setattr(ledger, "bonus_event", broken)
    monitor_sweep()
    monkeypatch.setattr(ledger, "bonus_event", real)

    # Whatever the beat does afterwards: the claims run out, the resolver finishes the rest.
    from bonuses.services import intents_resolve

    later = timezone.now() + timedelta(minutes=10)
    import time_machine

    with time_machine.travel(later, tick=False):
        intents_resolve()
        from accounts.services import account_events_dispatch

        AccountEvent.objects.update(next_attempt_at=timezone.now())
        account_events_dispatch()

    assert set(Bonus.objects.values_list("status", flat=True)) == {"active"}
    assert [_server_leverage(login) for login in logins] == [200, 200, 200]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_dispatchers_the_resolver_and_the_api_at_once_on_the_same_deals_credit_each_once(
    campaign_factory, settings
):
    """Two batch dispatchers, the beat resolver and API deposit calls (with the deal) on the
    same deposits, all at once on PostgreSQL: one bonus and one credit deal per deposit, no
    deadlock, the audit trail intact. (Held up.)"""
    from accounts.services import account_events_dispatch
    from bonuses.services import intents_resolve, trigger_deposit
    from gateways.models import SimulatedMT5Deal
    from gateways.mt5 import DealAction
    from tests.concurrency import run_at_once

    settings.MONITOR_DISPATCH_THREADS = 4
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(8)
    assert monitor_sweep(dispatch=False).deposits == 8
    deals = {
        login: SimulatedMT5Deal.objects.filter(account_id=login).latest("ticket")
        for login in logins
    }

    def work(n):
        if n < 2:
            return account_events_dispatch()
        if n == 2:
            return intents_resolve()
        for login in logins[n % 2 :: 2]:
            deal = deals[login]
            trigger_deposit(login=login, amount=deal.profit, deal_id=deal.ticket)
        return None

    _results, errors = run_at_once(work, threads=5)

    assert errors == []
    intents_resolve()
    credits = SimulatedMT5Deal.objects.filter(account_id__in=logins, action=DealAction.CREDIT)
    assert sorted(credits.values_list("account_id", flat=True)) == sorted(logins)
    assert sorted(Bonus.objects.values_list("login", flat=True)) == sorted(logins)
    assert set(Bonus.objects.values_list("status", flat=True)) == {"active"}
    assert [_server_leverage(login) for login in logins] == [200] * len(logins)
    assert AccountEvent.objects.exclude(status="done").count() == 0
    assert audit_verify().intact
