"""The Web API gateway's bounded pool of sessions, against the stand-in over real HTTP: threads
never open more than MT5_WEBAPI_CONNECTIONS connections, each connection shakes hands itself,
a broken connection is replaced by a fresh session, and a thread waits for a free one."""

from decimal import Decimal

import pytest

from gateways.errors import TransientGatewayError
from gateways.models import SimulatedMT5Deal, SimulatorKnobs
from gateways.mt5 import DealAction
from gateways.mt5.simulated import SimulatedMT5Gateway
from gateways.mt5.webapi.client import WebApiClient
from gateways.mt5.webapi.gateway import WebApiMT5Gateway
from gateways.mt5.webapi.pool import ClientPool
from tests.concurrency import run_at_once
from tests.gateways.mt5_webapi_standin import MANAGER_LOGIN, MANAGER_PASSWORD, running_standin

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def standin(transactional_db):
    with running_standin(groups=("real\\standard",)) as (url, server):
        yield url, server


@pytest.fixture
def market(transactional_db):
    return SimulatedMT5Gateway()


def _gateway(url, **kwargs) -> WebApiMT5Gateway:
    return WebApiMT5Gateway(url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD, **kwargs)


def _slow_answers(ms: int) -> None:
    # Every answer waits: calls from many threads overlap on the server.
    SimulatorKnobs.objects.update_or_create(server="mt5_webapi", defaults={"latency_ms": ms})


def test_many_threads_use_at_most_the_configured_connections_each_authenticated(standin, market):
    url, server = standin
    logins = [market.add_account(balance=100 + n) for n in range(6)]
    gateway = _gateway(url, connections=3)
    _slow_answers(30)

    def work(n):
        return [gateway.get_states(logins)[logins[n % 6]].balance for _ in range(3)]

    results, errors = run_at_once(work, threads=12)

    assert errors == []
    assert sorted(b for balances in results for b in set(balances)) == sorted(
        Decimal(100 + n % 6) for n in range(12)
    )
    assert server.peak_connections == 3  # busy enough to use all three, never a fourth
    assert server.logins == 3  # one handshake per connection
    clients = gateway.pool.clients()
    assert len(clients) == 3
    assert [client.stats.logins for client in clients] == [1, 1, 1]
    stats = gateway.stats()
    assert stats.by_path["/api/user/account/get_batch"] == 36
    assert stats.by_path["/api/auth/answer"] == 3
    gateway.close()


def test_a_broken_connection_is_replaced_by_a_fresh_session(standin, market):
    url, server = standin
    login = market.add_account(balance=100)
    gateway = _gateway(url, connections=2)
    _slow_answers(30)
    run_at_once(lambda n: gateway.get_states([login]), threads=4)
    assert server.logins == 2

    for handler in list(server._open):  # the server side hangs up every connection
        handler.hang_up()
    results, errors = run_at_once(lambda n: gateway.get_states([login])[login], threads=4)

    assert errors == []
    assert {state.balance for state in results} == {Decimal("100.00")}
    assert server.logins == 4  # both sessions logged in again, on new connections
    assert server.peak_connections <= 2
    assert len(server._open) <= 2
    gateway.close()


@pytest.mark.postgres  # concurrent writers: SQLite's shared-cache test database refuses them
def test_writes_from_many_threads_each_happen_once(standin, market):
    url, server = standin
    logins = [market.add_account(balance=100) for _ in range(8)]
    gateway = _gateway(url, connections=4)

    def credit(n):
        return gateway.post_credit(logins[n], Decimal("25.00"), comment=f"pool-{n}")

    tickets, errors = run_at_once(credit, threads=8)

    assert errors == []
    assert len(set(tickets)) == 8
    credits = SimulatedMT5Deal.objects.filter(action=DealAction.CREDIT)
    assert sorted(credits.values_list("account_id", flat=True)) == sorted(logins)
    assert server.peak_connections <= 4
    gateway.close()


def test_one_connection_serializes_the_threads_that_share_it(standin, market):
    url, server = standin
    login = market.add_account(balance=100)
    gateway = _gateway(url, connections=1)
    _slow_answers(20)

    results, errors = run_at_once(lambda n: gateway.get_states([login])[login].balance, threads=5)

    assert errors == []
    assert results == [Decimal("100.00")] * 5
    assert server.peak_connections == 1
    assert server.logins == 1
    gateway.close()


def test_a_lone_thread_keeps_one_connection(standin, market):
    url, server = standin
    login = market.add_account(balance=100)
    gateway = _gateway(url, connections=4)

    for _ in range(5):
        gateway.get_states([login])
    gateway.post_credit(login, Decimal("5.00"), comment="pool-lone")

    assert server.peak_connections == 1
    assert len(gateway.pool.clients()) == 1
    gateway.close()


def test_a_thread_finding_every_connection_busy_past_the_wait_gets_a_transient_error():
    made = []

    def factory():
        made.append(WebApiClient(url="http://127.0.0.1:9", login=1, password="x", timeout=1))
        return made[-1]

    pool = ClientPool(factory, 1, wait_seconds=0)
    taken = pool.acquire()

    with pytest.raises(TransientGatewayError) as caught:
        pool.acquire()

    assert caught.value.code == "pool_exhausted"
    pool.release(taken)
    assert pool.acquire() is taken  # given back, it is lent again; no second one is made
    assert len(made) == 1


def test_the_pool_size_comes_from_settings(settings, standin):
    url, _server = standin
    settings.MT5_WEBAPI_CONNECTIONS = 2

    assert _gateway(url).pool.size == 2
    assert _gateway(url, connections=5).pool.size == 5
