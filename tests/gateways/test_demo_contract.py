"""One contract for the demo provisioning gateway, run against the simulated server and the
HTTP client (talking to a stand-in on a real socket)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

import pytest
from django.contrib.auth.hashers import check_password

from gateways.demo import DemoAccount, DemoGateway, get_demo_gateway
from gateways.errors import PermanentGatewayError, TransientGatewayError
from gateways.loading import reset_gateways
from gateways.models import SimulatedDemoAccount, SimulatorKnobs

from .demo_server import DemoServer
from .standin import StandIn

pytestmark = pytest.mark.django_db

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Demo:
    """The gateway under test plus what only its server can tell (or be told)."""

    gateway: DemoGateway
    account_count: Callable[[], int]
    password_is: Callable[[int, str], bool]
    set_limit: Callable[[int], None]


@contextmanager
def standin_server(settings) -> Iterator[tuple[DemoServer, StandIn]]:
    server = DemoServer(api_key="key-1", secret="secret-1", partner_id="partner-1")
    with StandIn(server.handle) as standin:
        settings.DEMO_GATEWAY = "gateways.demo.http.HttpDemoGateway"
        settings.METAQUOTES_API_URL = standin.url
        settings.METAQUOTES_API_KEY = "key-1"
        settings.METAQUOTES_API_SECRET = "secret-1"
        settings.METAQUOTES_PARTNER_ID = "partner-1"
        settings.DEMO_REQUEST_TIMEOUT_SECONDS = 5
        settings.GATEWAY_MAX_RETRIES = 2
        settings.GATEWAY_BACKOFF_SECONDS = 0  # retries without waiting
        reset_gateways()
        yield server, standin
    reset_gateways()


@pytest.fixture(params=["simulated", "http"])
def demo(request, settings) -> Iterator[Demo]:
    settings.PASSWORD_HASHERS = FAST_HASHER
    if request.param == "simulated":
        settings.DEMO_GATEWAY = "gateways.demo.simulated.SimulatedDemoGateway"
        reset_gateways()
        gateway = get_demo_gateway()
        yield Demo(
            gateway=gateway,
            account_count=SimulatedDemoAccount.objects.count,
            password_is=lambda login, password: check_password(
                password,
                SimulatedDemoAccount.objects.get(
                    pk=login - SimulatedDemoAccount.LOGIN_OFFSET
                ).password_hash,
            ),
            set_limit=lambda limit: setattr(gateway, "max_accounts", limit),
        )
        reset_gateways()
    else:
        with standin_server(settings) as (server, _):
            yield Demo(
                gateway=get_demo_gateway(),
                account_count=lambda: len(server.accounts),
                password_is=lambda login, password: server.accounts[login]["password"] == password,
                set_limit=lambda limit: setattr(server, "max_accounts", limit),
            )


@pytest.fixture
def http_demo(settings) -> Iterator[tuple[DemoGateway, DemoServer, StandIn]]:
    with standin_server(settings) as (server, standin):
        yield get_demo_gateway(), server, standin


def create(gateway: DemoGateway, idempotency_id: str = "op-1", **overrides) -> DemoAccount:
    params = {
        "name": "Ada Lovelace",
        "balance": Decimal("50000.00"),
        "leverage": 100,
        "currency": "USD",
    } | overrides
    return gateway.create_demo_account(idempotency_id=idempotency_id, **params)


def test_the_server_answers_a_ping(demo):
    demo.gateway.ping()


def test_a_new_account_comes_back_with_its_credentials_and_settings(demo):
    account = create(demo.gateway)

    assert account.login > 0
    assert account.password
    assert account.server
    assert account.balance == Decimal("50000.00")
    assert account.leverage == 100
    assert account.currency == "USD"
    assert account.created_at.utcoffset() == UTC.utcoffset(None)
    assert account.password not in repr(account)


def test_creating_twice_with_the_same_idempotency_id_returns_the_same_account(demo):
    first = create(demo.gateway, "op-1")
    again = create(demo.gateway, "op-1")
    other = create(demo.gateway, "op-2")

    assert again == first
    assert other.login != first.login
    assert demo.account_count() == 2


def test_a_new_account_is_enabled_and_holds_its_balance(demo):
    account = create(demo.gateway)

    status = demo.gateway.check_account(account.login)

    assert status.exists and status.enabled and not status.connected
    assert status.login == account.login
    assert status.balance == status.equity == Decimal("50000.00")


def test_a_disabled_account_reports_disabled_and_disabling_again_is_harmless(demo):
    account = create(demo.gateway)

    demo.gateway.disable_account(account.login)
    demo.gateway.disable_account(account.login)

    status = demo.gateway.check_account(account.login)
    assert status.exists and not status.enabled and not status.connected


def test_changing_the_password_replaces_the_old_one(demo):
    account = create(demo.gateway)

    demo.gateway.change_password(account.login, "N3w-Passw0rd")

    assert demo.password_is(account.login, "N3w-Passw0rd")
    assert not demo.password_is(account.login, account.password)


def test_a_too_short_password_is_a_bad_request(demo):
    account = create(demo.gateway)

    with pytest.raises(PermanentGatewayError) as caught:
        demo.gateway.change_password(account.login, "short")
    assert caught.value.code == "bad_request"


def test_an_unknown_login_is_reported_missing_and_cannot_be_changed(demo):
    status = demo.gateway.check_account(12345)
    assert not status.exists and not status.enabled

    for call in (
        lambda: demo.gateway.change_password(12345, "N3w-Passw0rd"),
        lambda: demo.gateway.disable_account(12345),
    ):
        with pytest.raises(PermanentGatewayError) as caught:
            call()
        assert caught.value.code == "account_not_found"


@pytest.mark.parametrize(
    "overrides",
    [{"leverage": 0}, {"currency": "usd"}, {"balance": Decimal("-1.00")}, {"name": " "}],
    ids=["leverage", "currency", "balance", "name"],
)
def test_bad_parameters_are_a_permanent_bad_request(demo, overrides):
    with pytest.raises(PermanentGatewayError) as caught:
        create(demo.gateway, **overrides)

    assert caught.value.code == "bad_request"
    assert demo.account_count() == 0


def test_the_broker_limit_refuses_new_accounts_but_still_replays_old_ones(demo):
    demo.set_limit(1)
    first = create(demo.gateway, "op-1")

    with pytest.raises(PermanentGatewayError) as caught:
        create(demo.gateway, "op-2")

    assert caught.value.code == "limit_reached"
    assert create(demo.gateway, "op-1") == first


def test_the_simulated_server_fails_transiently_when_its_error_rate_is_one(settings):
    settings.DEMO_GATEWAY = "gateways.demo.simulated.SimulatedDemoGateway"
    reset_gateways()
    SimulatorKnobs.objects.create(server="demo", error_rate=1)

    with pytest.raises(TransientGatewayError):
        get_demo_gateway().ping()
    with pytest.raises(TransientGatewayError):
        create(get_demo_gateway())
    assert SimulatedDemoAccount.objects.count() == 0


def test_the_stand_in_refuses_a_request_signed_with_the_wrong_secret(http_demo, settings):
    gateway, server, standin = http_demo
    settings.METAQUOTES_API_SECRET = "not-the-secret"

    with pytest.raises(PermanentGatewayError) as caught:
        create(gateway)

    assert caught.value.code == "bad_signature"
    assert server.accounts == {}
    assert len(standin.requests) == 1


def test_the_create_call_carries_its_idempotency_id_as_a_header(http_demo):
    gateway, server, _ = http_demo

    create(gateway, "op-42")

    assert server.idempotency_keys_seen == ["op-42"]


def test_a_503_is_retried_and_then_succeeds(http_demo):
    gateway, server, standin = http_demo
    server.faults = [503, 503]

    account = create(gateway)

    assert len(standin.requests) == 3
    assert list(server.accounts) == [account.login]


def test_a_create_whose_answer_was_lost_is_retried_into_the_same_account(http_demo):
    gateway, server, standin = http_demo
    server.faults_after = [503]  # the server created the account, then the answer failed

    account = create(gateway, "op-1")

    assert len(standin.requests) == 2
    assert server.idempotency_keys_seen == ["op-1", "op-1"]
    assert list(server.accounts) == [account.login]


def test_a_400_is_not_retried(http_demo):
    gateway, _, standin = http_demo

    with pytest.raises(PermanentGatewayError):
        create(gateway, leverage=0)

    assert len(standin.requests) == 1
