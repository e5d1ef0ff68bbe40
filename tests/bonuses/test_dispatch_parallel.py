"""Deposits become bonuses in parallel (MONITOR_DISPATCH_THREADS threads over the Web API
gateway's pool of connections), and still exactly once: several dispatchers at once over the
same recorded deposits, on PostgreSQL, against the stand-in over real HTTP."""

from decimal import Decimal

import pytest

from accounts.models import AccountEvent
from accounts.services import account_events_dispatch, monitor_sweep
from bonuses.models import Bonus
from gateways.loading import reset_gateways
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal
from gateways.mt5 import DealAction
from gateways.mt5.simulated import SimulatedMT5Gateway
from tests.bonuses.conftest import deposited_accounts
from tests.concurrency import run_at_once
from tests.gateways.mt5_webapi_standin import MANAGER_LOGIN, MANAGER_PASSWORD, running_standin

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WEBAPI = "gateways.mt5.webapi.gateway.WebApiMT5Gateway"
ACCOUNTS = 12


@pytest.fixture
def webapi(settings, transactional_db):
    """The product on the Web API gateway, against a stand-in on a loopback port."""
    with running_standin(groups=("real\\standard",)) as (url, server):
        settings.MT5_GATEWAY = WEBAPI
        settings.MT5_WEBAPI_URL = url
        settings.MT5_MANAGER_LOGIN = str(MANAGER_LOGIN)
        settings.MT5_MANAGER_PASSWORD = MANAGER_PASSWORD
        settings.MT5_WEBAPI_CONNECTIONS = 4
        settings.MONITOR_DISPATCH_THREADS = 4
        reset_gateways()
        yield server
        reset_gateways()


def _credits(logins):
    return sorted(
        SimulatedMT5Deal.objects.filter(account_id__in=logins, action=DealAction.CREDIT)
        .values_list("account_id", flat=True)
        .order_by("account_id")
    )


def test_three_dispatchers_at_once_grant_every_deposit_once_over_several_connections(
    webapi, campaign_factory
):
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(ACCOUNTS)
    assert monitor_sweep(dispatch=False).deposits == ACCOUNTS

    results, errors = run_at_once(lambda n: account_events_dispatch(), threads=3)

    assert errors == []
    assert sum(result.handled for result in results) == ACCOUNTS
    assert _credits(logins) == sorted(logins)  # one credit deal per account, none twice
    bonuses = Bonus.objects.filter(login__in=logins)
    assert sorted(bonuses.values_list("login", flat=True)) == sorted(logins)
    assert set(bonuses.values_list("status", "amount")) == {("active", Decimal("100.00"))}
    # Type A: each leverage set once the credit landed, 300 / (50% + 1) = 200.
    assert set(
        SimulatedMT5Account.objects.filter(pk__in=logins).values_list("leverage", flat=True)
    ) == {200}
    assert set(AccountEvent.objects.values_list("status", flat=True)) == {"done"}
    assert 1 < webapi.peak_connections <= 4  # in parallel, within the pool's bound


def test_a_login_whose_first_event_fails_holds_its_later_events_while_others_go_on(
    webapi, campaign_factory
):
    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(4)
    monitor_sweep(dispatch=False)
    first = logins[0]
    # The first login gets a second deposit, recorded after the first one.
    SimulatedMT5Gateway().post_balance(first, Decimal("50.00"), comment="")
    monitor_sweep(dispatch=False)
    # Its first event cannot be handled (an amount the engine refuses): it fails each time.
    earliest = AccountEvent.objects.filter(login=first).order_by("id").first()
    AccountEvent.objects.filter(pk=earliest.pk).update(amount=Decimal("0.00"))

    result = account_events_dispatch()

    assert result.handled == 3
    assert (result.failed, result.held) == (1, 1)
    assert _credits(logins[1:]) == sorted(logins[1:])
    assert _credits([first]) == []
    events = AccountEvent.objects.filter(login=first).order_by("id")
    assert [event.status for event in events] == ["pending", "pending"]
    assert [event.attempts for event in events] == [1, 0]  # the later one waits its turn


def test_batch_dispatchers_the_api_and_resolvers_at_once_grant_each_deposit_once(
    webapi, campaign_factory
):
    from bonuses.services import intents_resolve, trigger_deposit

    campaign_factory(bonus_type="A", percentage="50")
    logins = deposited_accounts(ACCOUNTS)
    assert monitor_sweep(dispatch=False).deposits == ACCOUNTS
    deals = dict(AccountEvent.objects.filter(kind="deposit").values_list("login", "ticket"))

    def work(n):
        if n < 2:  # two batch dispatchers over the same events
            return account_events_dispatch()
        if n == 2:  # the API told of the same deposits, one by one, newest login first
            for login in sorted(logins, reverse=True):
                trigger_deposit(login=login, amount=Decimal("200.00"), deal_id=deals[login])
            return None
        return [intents_resolve() for _ in range(5)]  # the beat's resolver, again and again

    _, errors = run_at_once(work, threads=4)
    intents_resolve()

    assert errors == []
    assert _credits(logins) == sorted(logins)  # one credit deal per account, none twice
    bonuses = Bonus.objects.filter(login__in=logins)
    assert sorted(bonuses.values_list("login", flat=True)) == sorted(logins)
    assert set(bonuses.values_list("status", flat=True)) == {"active"}
    assert set(
        SimulatedMT5Account.objects.filter(pk__in=logins).values_list("leverage", flat=True)
    ) == {200}
    assert set(AccountEvent.objects.values_list("status", flat=True)) == {"done"}
