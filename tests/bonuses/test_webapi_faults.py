"""Faults between the product and the MT5 Web API lose nothing and double nothing.

Each test runs the product's pipeline through the Web API client (conftest's `webapi`) and
has the stand-in meet one call with one fault (`fail_next`): the connection dropped after the
server did the work, a session expired (HTTP 403), an answer slower than the client's timeout.
A write whose answer was lost is never resent blindly: the ledger records it as unknown and
`intents_resolve` (the beat) finds its deal by the op id in the comment. Afterwards the server
holds every credit exactly once.
"""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AccountEvent
from accounts.services import monitor_sweep, monitor_test_deal
from accounts.tasks import monitor_sweep_task
from bonuses.models import Bonus, CreditIntent
from bonuses.services import credit_reconcile, intents_resolve
from gateways.loading import reset_gateways
from gateways.models import SimulatedMT5Deal, SimulatorKnobs
from gateways.mt5 import DealAction, get_mt5_gateway
from tests.bonuses.webapi_server import assert_written_once, deals_of, on_server

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BALANCE = "/api/trade/balance"


def credit_deals(login):
    return SimulatedMT5Deal.objects.filter(account_id=login, action=DealAction.CREDIT)


def grant_a_type_a_bonus(watched, campaign_factory):
    """A watched account, a 50% Type A campaign and a 1,000.00 deposit the monitor has not
    swept yet: the next sweep grants 500.00 of credit and sets leverage 333."""
    login = watched(balance="0.00", leverage=500)
    campaign_factory(bonus_type="A", percentage="50")
    monitor_test_deal(login=login, amount=Decimal("1000.00"))
    return login


@pytest.mark.parametrize("fault", ["drop", "slow"])
def test_a_credit_whose_answer_was_lost_is_found_by_its_comment_and_never_sent_twice(
    webapi, watched, campaign_factory, settings, fault
):
    if fault == "slow":
        settings.MT5_REQUEST_TIMEOUT_SECONDS = 1.5
        reset_gateways()  # a client with the short timeout
    login = grant_a_type_a_bonus(watched, campaign_factory)
    webapi.fail_next(BALANCE, fault, seconds=3)  # the credit is booked; its answer never comes

    monitor_sweep()

    bonus = Bonus.objects.get(login=login)
    [credit_in] = CreditIntent.objects.filter(bonus=bonus, kind="credit_in")
    assert (bonus.status, credit_in.status) == ("pending", "unknown")
    assert "UnknownOutcomeError" in credit_in.last_error
    assert credit_deals(login).count() == 1  # the server did it
    assert on_server(login).leverage == 500  # not before the credit is confirmed

    intents_resolve()  # the beat: looks the op id up before anything is sent again
    monitor_sweep()

    bonus.refresh_from_db()
    credit_in.refresh_from_db()
    assert (bonus.status, bonus.credit_remaining) == ("active", Decimal("500.00"))
    [deal] = credit_deals(login)
    assert (credit_in.status, credit_in.deal_id, deal.comment) == (
        "done",
        deal.ticket,
        credit_in.op_id,
    )
    server = on_server(login)
    assert (server.credit, server.leverage) == (Decimal("500.00"), 333)
    assert_written_once(login)
    assert credit_reconcile() == []


def test_a_credit_refused_with_403_did_nothing_and_is_sent_once_after_the_check(
    webapi, watched, campaign_factory
):
    login = grant_a_type_a_bonus(watched, campaign_factory)
    webapi.fail_next(BALANCE, "forbidden")  # the session expired just before the write

    monitor_sweep()

    [credit_in] = CreditIntent.objects.filter(login=login, kind="credit_in")
    assert credit_in.status == "unknown"
    assert "session_expired" in credit_in.last_error
    assert not credit_deals(login).exists()

    intents_resolve()

    credit_in.refresh_from_db()
    assert credit_in.status == "done"
    assert credit_deals(login).get().ticket == credit_in.deal_id
    assert Bonus.objects.get(login=login).status == "active"
    assert on_server(login).leverage == 333
    assert_written_once(login)


def test_after_the_session_expired_while_idle_reads_log_in_again_and_the_grant_goes_through(
    webapi, watched, campaign_factory
):
    login = grant_a_type_a_bonus(watched, campaign_factory)
    client = get_mt5_gateway().client
    logins_before = client.stats.logins

    webapi.expire_sessions()  # idle: the server forgot the session, the connection is up
    result = monitor_sweep()

    assert result.deposits == 1
    assert client.stats.logins == logins_before + 1  # the read got 403, logged in, resent
    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, on_server(login).credit) == ("active", Decimal("500.00"))
    assert on_server(login).leverage == 333
    assert credit_deals(login).count() == 1
    assert_written_once(login)


def test_a_read_whose_connection_dropped_mid_session_is_answered_on_a_fresh_one(
    webapi, watched, campaign_factory
):
    login = grant_a_type_a_bonus(watched, campaign_factory)
    client = get_mt5_gateway().client
    logins_before = client.stats.logins
    webapi.fail_next("/api/user/account/get_batch", "drop")

    result = monitor_sweep()

    assert result.deposits == 1
    assert client.stats.logins == logins_before + 1
    assert Bonus.objects.get(login=login).status == "active"
    assert credit_deals(login).count() == 1
    assert_written_once(login)


def test_a_cut_connection_before_a_withdrawal_takes_back_the_credit_once(
    webapi, watched, campaign_factory
):
    login = grant_a_type_a_bonus(watched, campaign_factory)
    monitor_sweep()
    monitor_test_deal(login=login, amount=Decimal("-250.00"))
    webapi.fail_next(BALANCE, "drop")  # the credit-out is booked, its answer lost

    monitor_sweep()
    intents_resolve()
    webapi.drop_connections()  # and the network goes once more before the next sweep
    monitor_sweep()

    [credit_out] = CreditIntent.objects.filter(login=login, kind="credit_out")
    assert (credit_out.status, credit_out.amount) == ("done", Decimal("125.00"))
    assert deals_of(credit_out).get().profit == Decimal("-125.00")
    assert Bonus.objects.get(login=login).credit_remaining == Decimal("375.00")
    server = on_server(login)
    assert (server.balance, server.credit, server.leverage) == (
        Decimal("750.00"),
        Decimal("375.00"),
        333,
    )
    assert AccountEvent.objects.filter(kind="withdrawal").count() == 1
    assert_written_once(login)
    assert credit_reconcile() == []


def test_a_conversion_interrupted_between_its_two_writes_finishes_in_order_once(
    webapi, watched, market, campaign_factory
):
    login = watched(balance="1000.00")
    campaign_factory(bonus_type="C", percentage="10", convert_per_lot="10.00")
    monitor_test_deal(login=login, amount=Decimal("500.00"))
    monitor_sweep()
    position = market.open_position(login, symbol="EURUSD", side="buy", volume="2.00")
    market.close_position(position, profit="0.00")
    webapi.fail_next(BALANCE, "drop")  # the credit-out is booked, its answer lost

    monitor_sweep()

    writes = CreditIntent.objects.filter(login=login, kind__in=["credit_out", "balance_in"])
    assert sorted(writes.values_list("kind", "status")) == [
        ("balance_in", "pending"),  # waits for the credit-out's outcome
        ("credit_out", "unknown"),
    ]
    intents_resolve()
    monitor_sweep()

    assert sorted(writes.values_list("kind", "status")) == [
        ("balance_in", "done"),
        ("credit_out", "done"),
    ]
    server = on_server(login)
    assert (server.balance, server.credit) == (Decimal("1520.00"), Decimal("30.00"))
    assert_written_once(login)
    assert credit_reconcile() == []


def test_drawdown_whose_dealer_answer_was_lost_still_closes_every_position_once(
    webapi, watched, market, campaign_factory
):
    login = watched(balance="0.00", leverage=500)
    campaign_factory(bonus_type="B", percentage="100")
    monitor_test_deal(login=login, amount=Decimal("500.00"))
    monitor_sweep()
    first = market.open_position(login, symbol="EURUSD", side="buy", volume="1.00")
    second = market.open_position(login, symbol="GBPUSD", side="sell", volume="0.50")
    market.set_position_profit(first, "-300.00")
    market.set_position_profit(second, "-200.00")
    webapi.fail_next("/api/dealer/send_request", "drop")  # the first close queued, unanswered

    monitor_sweep()
    intents_resolve()
    monitor_sweep()

    assert not market.get_positions([login])
    closing = SimulatedMT5Deal.objects.filter(account_id=login, entry="out")
    assert sorted(closing.values_list("position_id", flat=True)) == sorted([first, second])
    [close] = CreditIntent.objects.filter(login=login, kind="close_positions")
    assert close.status == "done"
    bonus = Bonus.objects.get(login=login)
    assert (bonus.status, bonus.cancel_reason) == ("cancelled", "drawdown")
    assert on_server(login).credit == 0
    assert_written_once(login)


def test_with_every_fault_knob_on_each_deposit_is_granted_exactly_once(
    webapi, watched, campaign_factory, time_machine
):
    random.seed(16)
    logins = [watched(balance="0.00") for _ in range(3)]
    campaign_factory(bonus_type="B", percentage="10", one_per_account=False)
    deposits = [monitor_test_deal(login=login, amount=Decimal("100.00")) for login in logins * 3]
    knobs = SimulatorKnobs.objects.create(
        server="mt5_webapi", error_rate="0.10", forbidden_rate="0.10", drop_rate="0.10"
    )
    for _ in range(8):
        monitor_sweep_task()  # raises nothing, whatever fails underneath
        intents_resolve()
        time_machine.move_to(timezone.now() + timedelta(seconds=5))

    knobs.delete()
    for _ in range(3):
        time_machine.move_to(timezone.now() + timedelta(hours=2))  # every backoff over
        monitor_sweep()
        intents_resolve()

    for deal_id in deposits:
        bonus = Bonus.objects.get(deposit_deal_id=deal_id)
        assert bonus.status == "active"
        [credit_in] = CreditIntent.objects.filter(bonus=bonus, kind="credit_in")
        assert deals_of(credit_in).count() == 1
    for login in logins:
        assert credit_deals(login).count() == 3
        assert on_server(login).credit == Decimal("30.00")
    assert credit_reconcile() == []


def test_a_read_the_server_was_too_busy_for_is_asked_once_more_and_a_write_is_not(
    webapi, watched, campaign_factory
):
    login = grant_a_type_a_bonus(watched, campaign_factory)
    client = get_mt5_gateway().client
    balance_calls = client.stats.by_path[BALANCE]  # the deposit's
    webapi.fail_next("/api/user/get_batch", "busy")  # retcode 9 on the grant's account read
    webapi.fail_next(BALANCE, "busy")  # and on its credit: the outcome of a write is unknown

    monitor_sweep()

    assert Bonus.objects.get(login=login).status == "pending"  # granted on the first sweep
    [credit_in] = CreditIntent.objects.filter(login=login, kind="credit_in")
    assert (credit_in.status, client.stats.by_path[BALANCE]) == ("unknown", balance_calls + 1)
    assert "retcode_9" in credit_in.last_error
    assert not credit_deals(login).exists()

    intents_resolve()

    assert Bonus.objects.get(login=login).status == "active"
    assert credit_deals(login).count() == 1
    assert_written_once(login)


def test_a_lost_credit_answer_is_looked_up_again_within_seconds_not_at_the_next_beat(
    webapi, watched, campaign_factory, settings
):
    """The client's credit waits for the resolver: the unknown write queues its own look-up
    (`bonuses.resolve_operation`, 5 s, then 10 s, 20 s), the beat remaining the safety net."""
    from unittest import mock

    from bonuses import tasks

    login = grant_a_type_a_bonus(watched, campaign_factory)
    webapi.fail_next(BALANCE, "drop")
    with mock.patch.object(tasks.resolve_operation, "apply_async") as queued:
        monitor_sweep()
    [credit_in] = CreditIntent.objects.filter(bonus__login=login, kind="credit_in")
    assert credit_in.status == "unknown"
    queued.assert_called_once_with(args=[str(credit_in.operation)], countdown=5.0)

    # The worker runs it 5 s later: found by its comment, not sent again.
    assert tasks.resolve_operation(str(credit_in.operation)) == {"done": 1}
    credit_in.refresh_from_db()
    assert credit_in.status == "done"
    assert credit_deals(login).count() == 1
    assert Bonus.objects.get(login=login).status == "active"


def test_the_quick_look_ups_of_an_unknown_write_stop_after_their_attempts(
    webapi, watched, campaign_factory, settings
):
    from unittest import mock

    from bonuses import tasks

    settings.BONUS_RESOLVE_SOON_ATTEMPTS = 2
    login = grant_a_type_a_bonus(watched, campaign_factory)
    webapi.fail_next(BALANCE, "drop")
    with mock.patch.object(tasks.resolve_operation, "apply_async") as queued:
        monitor_sweep()  # attempt 1: unknown, look again in 5 s
        [credit_in] = CreditIntent.objects.filter(bonus__login=login, kind="credit_in")
        # The server stays busy (retcode 9 to every call): the look-ups cannot tell.
        SimulatorKnobs.objects.update_or_create(server="mt5_webapi", defaults={"error_rate": 1})
        tasks.resolve_operation(str(credit_in.operation))  # attempt 2: still unknown, 10 s
        tasks.resolve_operation(str(credit_in.operation))  # attempt 3: the beat's job now
    credit_in.refresh_from_db()
    assert (credit_in.status, credit_in.attempts) == ("unknown", 3)
    assert [call.kwargs["countdown"] for call in queued.call_args_list] == [5.0, 10.0]
    SimulatorKnobs.objects.filter(server="mt5_webapi").update(error_rate=0)
    intents_resolve()
    credit_in.refresh_from_db()
    assert credit_in.status == "done"
    assert credit_deals(login).count() == 1
