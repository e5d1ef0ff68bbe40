"""One contract for the demo provisioning gateway, run against the simulated demo server and
against `WebApiDemoGateway` talking MT5's Manager Web API to a demo stand-in (a second
stand-in server, `server="demo"`) over real HTTP on a loopback port.

The stand-in answers on its own threads with their own database connections, so these tests
commit what they write (transaction=True).
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.hashers import check_password

from gateways.demo import DemoAccount, DemoGateway, get_demo_gateway
from gateways.demo.webapi import marker
from gateways.errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError
from gateways.loading import reset_gateways
from gateways.models import (
    SimulatedDemoAccount,
    SimulatedMT5Account,
    SimulatedMT5Deal,
    SimulatorKnobs,
    WebApiDemoCreation,
)
from gateways.mt5.simulated import SimulatedMT5Gateway, seed_demo_accounts
from gateways.mt5.webapi.standin import MT5WebAPIStandIn
from tests.gateways.mt5_webapi_standin import MANAGER_LOGIN, MANAGER_PASSWORD, running_standin

pytestmark = pytest.mark.django_db(transaction=True)

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEMO_GROUP = "demo\\pool"
DEMO_SERVER = SimulatedMT5Gateway(server="demo")


@dataclass
class Demo:
    """The gateway under test plus what only its server can tell (or be told)."""

    gateway: DemoGateway
    account_count: Callable[[], int]
    password_is: Callable[[int, str], bool]
    set_limit: Callable[[int], None]


@contextmanager
def demo_standin(settings) -> Iterator[MT5WebAPIStandIn]:
    """A demo server stand-in and the settings that point WebApiDemoGateway at it."""
    settings.MT5_DEMO_GROUP = DEMO_GROUP
    with running_standin(server="demo", groups=()) as (url, server):
        settings.DEMO_GATEWAY = "gateways.demo.webapi.WebApiDemoGateway"
        settings.MT5_DEMO_URL = url
        settings.MT5_DEMO_MANAGER_LOGIN = str(MANAGER_LOGIN)
        settings.MT5_DEMO_MANAGER_PASSWORD = MANAGER_PASSWORD
        settings.MT5_DEMO_SERVER = "Brokerdesk-Demo"
        settings.MT5_DEMO_TIME_OFFSET_SECONDS = 0
        settings.DEMO_REQUEST_TIMEOUT_SECONDS = 5
        reset_gateways()
        try:
            yield server
        finally:
            reset_gateways()


@pytest.fixture(params=["simulated", "webapi"])
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
        with demo_standin(settings) as server:
            yield Demo(
                gateway=get_demo_gateway(),
                account_count=demo_accounts,
                password_is=DEMO_SERVER.password_matches,
                set_limit=lambda limit: setattr(server, "max_accounts", limit),
            )


@pytest.fixture
def webapi(settings) -> Iterator[tuple[DemoGateway, MT5WebAPIStandIn]]:
    settings.PASSWORD_HASHERS = FAST_HASHER
    with demo_standin(settings) as server:
        yield get_demo_gateway(), server


def demo_accounts() -> int:
    return SimulatedMT5Account.objects.filter(server="demo").count()


def deposits(login: int) -> list[Decimal]:
    rows = SimulatedMT5Deal.objects.filter(account_id=login, action="balance")
    return list(rows.values_list("profit", flat=True))


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
    assert demo.password_is(account.login, account.password)


def test_creating_twice_with_the_same_idempotency_id_returns_the_same_account(demo):
    first = create(demo.gateway, "op-1")
    again = create(demo.gateway, "op-1")
    other = create(demo.gateway, "op-2")

    assert again == first
    assert again.password == first.password
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


# --- The Web API demo server only ------------------------------------------------------------


def test_the_account_is_made_by_user_add_in_the_demo_group_marked_and_funded_once(webapi):
    gateway, _ = webapi

    account = create(gateway, "dp0123456789abcdef0123")

    row = SimulatedMT5Account.objects.get(pk=account.login)
    assert (row.server, row.group, row.leverage) == ("demo", DEMO_GROUP, 100)
    assert row.comment == marker("dp0123456789abcdef0123") == "bd:dp0123456789abcdef0123"
    assert row.balance == Decimal("50000.00")
    assert deposits(account.login) == [Decimal("50000.00")]
    assert account.server == "Brokerdesk-Demo"


def test_a_long_idempotency_id_still_fits_mt5s_31_character_comment(webapi):
    gateway, _ = webapi
    long_id = "press-event-2026/" + "x" * 40

    account = create(gateway, long_id)

    comment = SimulatedMT5Account.objects.get(pk=account.login).comment
    assert comment == marker(long_id) and len(comment) <= 31
    assert create(gateway, long_id) == account


def test_a_user_add_whose_answer_is_lost_makes_exactly_one_account(webapi):
    gateway, server = webapi
    server.fail_next("/api/user/add", "drop")  # done on the server, the answer never arrives

    account = create(gateway, "op-1")
    again = create(gateway, "op-1")

    assert demo_accounts() == 1
    assert again == account
    assert deposits(account.login) == [Decimal("50000.00")]


def test_when_the_lookup_fails_too_the_retry_finds_the_account_instead_of_adding_another(webapi):
    gateway, server = webapi
    # user/add done and unanswered; the lookup of the marker fails (its resend too).
    server.fail_next("/api/user/add", "drop")
    server.fail_next("/api/user/logins", "drop", times=2)

    with pytest.raises(TransientGatewayError):
        create(gateway, "op-1")
    assert demo_accounts() == 1
    login = SimulatedMT5Account.objects.get(server="demo").login
    assert deposits(login) == []  # no balance posted for an account not yet confirmed

    account = create(gateway, "op-1")  # the pool's retry

    assert account.login == login
    assert demo_accounts() == 1
    assert deposits(login) == [Decimal("50000.00")]


def test_a_user_add_the_server_makes_after_the_client_gave_up_is_not_sent_again(webapi, settings):
    """A loaded server does the work after the client stopped waiting: a lookup at once finds
    nothing, and a second user/add then would make a second account."""
    gateway, server = webapi
    settings.DEMO_REQUEST_TIMEOUT_SECONDS = 0.5
    reset_gateways()
    gateway = get_demo_gateway()
    server.fail_next("/api/user/add", "late", seconds=1.5)

    with pytest.raises(UnknownOutcomeError):
        create(gateway, "op-1")
    assert demo_accounts() == 0  # not made yet: the lookup found nothing
    with pytest.raises(TransientGatewayError, match="may still be made"):
        create(gateway, "op-1")  # the pool's retry, at once: no second user/add
    deadline = time.monotonic() + 30
    while demo_accounts() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the server's rows for the late account, not the clock
    account = create(gateway, "op-1")  # the next retry finds it by its marker

    assert demo_accounts() == 1
    assert account.login == SimulatedMT5Account.objects.get(server="demo").login
    assert deposits(account.login) == [Decimal("50000.00")]


def test_an_add_still_unseen_after_the_window_is_sent_again_once(webapi, settings):
    """An earlier call that got no answer (its process died) and left no account on the
    server: within 2 x the request timeout the retry waits; after it, one user/add."""
    from django.utils import timezone

    gateway, _ = webapi
    sent = timezone.now()
    WebApiDemoCreation.objects.create(idempotency_id="op-1", add_sent_at=sent)

    with pytest.raises(TransientGatewayError, match="may still be made"):
        create(gateway, "op-1")
    with time_machine.travel(sent + timedelta(seconds=2 * 5 + 1)):
        account = create(gateway, "op-1")

    assert demo_accounts() == 1
    assert deposits(account.login) == [Decimal("50000.00")]
    assert create(gateway, "op-1") == account


def test_an_initial_balance_whose_answer_is_lost_is_posted_once(webapi):
    gateway, server = webapi
    server.fail_next("/api/trade/balance", "drop")

    account = create(gateway, "op-1")

    assert account.balance == Decimal("50000.00")
    assert deposits(account.login) == [Decimal("50000.00")]


def test_a_retry_after_an_unresolved_balance_posts_it_once(webapi):
    gateway, server = webapi
    # The deposit is booked, unanswered, and its lookup by comment fails (with its resend).
    server.fail_next("/api/trade/balance", "drop")
    server.fail_next("/api/deal/get_batch", "drop", times=2)

    with pytest.raises(TransientGatewayError):
        create(gateway, "op-1")
    account = create(gateway, "op-1")

    assert demo_accounts() == 1
    assert deposits(account.login) == [Decimal("50000.00")]


def test_the_demo_and_the_live_server_never_see_each_others_accounts(webapi):
    gateway, _ = webapi
    seed_demo_accounts()  # the live server's 10001-10010
    account = create(gateway, "op-1")

    assert account.login not in SimulatedMT5Gateway().list_logins()
    assert SimulatedMT5Gateway().get_accounts([account.login]) == {}
    assert not gateway.check_account(10001).exists
    with pytest.raises(PermanentGatewayError) as caught:
        gateway.disable_account(10001)
    assert caught.value.code == "account_not_found"
    assert SimulatedMT5Account.objects.get(pk=10001).enabled


def test_a_demo_group_missing_on_the_server_is_a_bad_request_and_makes_nothing(webapi, settings):
    gateway, _ = webapi
    settings.MT5_DEMO_GROUP = "demo\\nowhere"

    with pytest.raises(PermanentGatewayError) as caught:
        create(gateway, "op-1")

    assert caught.value.code == "bad_request"
    assert demo_accounts() == 0


def test_a_currency_other_than_the_groups_is_a_bad_request(webapi):
    gateway, _ = webapi

    with pytest.raises(PermanentGatewayError) as caught:
        create(gateway, "op-1", currency="EUR")

    assert caught.value.code == "bad_request"
    assert demo_accounts() == 0


def test_an_unreachable_demo_server_is_transient(settings):
    settings.DEMO_GATEWAY = "gateways.demo.webapi.WebApiDemoGateway"
    settings.MT5_DEMO_URL = "http://127.0.0.1:9"  # discard: nothing listens
    settings.MT5_DEMO_MANAGER_LOGIN = "1000"
    reset_gateways()
    try:
        with pytest.raises(TransientGatewayError):
            get_demo_gateway().ping()
    finally:
        reset_gateways()


def test_an_unconfigured_demo_server_says_which_setting_is_missing(settings):
    settings.DEMO_GATEWAY = "gateways.demo.webapi.WebApiDemoGateway"
    settings.MT5_DEMO_URL = ""
    reset_gateways()
    try:
        with pytest.raises(PermanentGatewayError, match="MT5_DEMO_URL") as caught:
            get_demo_gateway().ping()
        assert caught.value.code == "not_configured"
    finally:
        reset_gateways()


def test_without_mt5_demo_group_the_pools_group_is_used_for_the_add_and_the_lookup(
    webapi, settings
):
    gateway, server = webapi
    settings.MT5_DEMO_GROUP = ""  # the stand-in made its demo group before this
    server.fail_next("/api/user/add", "drop")

    account = create(gateway, "op-1", group=DEMO_GROUP)

    assert SimulatedMT5Account.objects.get(pk=account.login).group == DEMO_GROUP
    assert demo_accounts() == 1


def test_a_user_add_that_waited_for_the_session_is_not_sent_again_while_it_may_land(
    webapi, settings
):
    """Found in review: the creation row records add_sent_at before the call waits for the
    one Web API session (the process's provisioning threads and activations take turns on
    it), so a user/add that waited there left the client later than recorded, and its
    2 x timeout window was over by the time the client gave up: the pool's retry sent a
    second user/add while the server could still make the first, and made two accounts."""
    import threading

    from django.db import connection
    from django.utils import timezone

    gateway, server = webapi
    settings.DEMO_REQUEST_TIMEOUT_SECONDS = 0.5
    reset_gateways()
    gateway = get_demo_gateway()
    create(gateway, "op-0")  # the session is up, the group's currency known
    client = gateway.mt5.client
    server.fail_next("/api/user/add", "late", seconds=1.5)
    errors = []

    def provision():
        try:
            create(gateway, "op-1")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    with time_machine.travel(timezone.now(), tick=True) as traveller:
        client._lock.acquire()  # another thread's call holds the session
        worker = threading.Thread(target=provision)
        try:
            worker.start()
            deadline = time.monotonic() + 30
            while not WebApiDemoCreation.objects.filter(
                idempotency_id="op-1", add_sent_at__isnull=False
            ).exists():
                assert time.monotonic() < deadline and worker.is_alive()
                time.sleep(0.01)  # polling for the worker's row, not waiting for time
            traveller.shift(timedelta(seconds=2 * 0.5))  # the calls it waited behind
        finally:
            client._lock.release()
        worker.join(timeout=30)
        assert [type(e) for e in errors] == [UnknownOutcomeError]
        assert demo_accounts() == 1  # op-0's: op-1's not made yet

        with pytest.raises(TransientGatewayError, match="may still be made"):
            create(gateway, "op-1")  # the pool's retry, once the client gave up

    deadline = time.monotonic() + 30
    while demo_accounts() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the server's rows for the late account, not the clock
    account = create(gateway, "op-1")
    assert demo_accounts() == 2  # op-0's and op-1's, no third
    assert deposits(account.login) == [Decimal("50000.00")]
