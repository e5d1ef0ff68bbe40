"""The press-pass flow end to end on MT5's Manager Web API: the pool's accounts are made by
`user/add` on a demo server stand-in (`server="demo"`), while the product's live MT5 is a
second stand-in (the live server), both over real HTTP on loopback ports.

Provision the pool, activate a press pass through the API, reveal the credentials delivered,
log in with them (the demo server checks the password), expire the pass seven days later:
the account is disabled on the demo server. The live server never sees a demo account.

The stand-ins answer on their own threads with their own database connections, so these
tests commit what they write (transaction=True).
"""

from decimal import Decimal

import pytest
import time_machine

from accounts.roles import Role
from demo_pool.models import DemoAccount, PressPass, ProvisioningRequest
from demo_pool.services import pool_refill, press_passes_expire_due
from gateways.demo import get_demo_gateway
from gateways.demo.webapi import marker
from gateways.loading import reset_gateways
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal
from gateways.mt5 import get_mt5_gateway
from gateways.mt5.simulated import SimulatedMT5Gateway, seed_demo_accounts
from tests.gateways.mt5_webapi_standin import MANAGER_LOGIN, MANAGER_PASSWORD, running_standin

pytestmark = pytest.mark.django_db(transaction=True)

ACTIVATE = "/api/v1/demo/press-pass/activate/"
BODY = {"user_id": "42", "real_name": "Jane Doe", "delivery_method": "qr", "contact_info": ""}
DEMO_GROUP = "demo\\press"
DEMO_SERVER = SimulatedMT5Gateway(server="demo")


@pytest.fixture
def servers(settings):
    """The live and the demo stand-in, and the settings that point the product at them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MT5_DEMO_GROUP = DEMO_GROUP
    with (
        running_standin() as (live_url, live),
        running_standin(server="demo", groups=(), manager_login=2000) as (demo_url, demo),
    ):
        settings.MT5_GATEWAY = "gateways.mt5.webapi.gateway.WebApiMT5Gateway"
        settings.MT5_WEBAPI_URL = live_url
        settings.MT5_MANAGER_LOGIN = str(MANAGER_LOGIN)
        settings.MT5_MANAGER_PASSWORD = MANAGER_PASSWORD
        settings.MT5_WEBAPI_TIME_OFFSET_SECONDS = 0
        settings.DEMO_GATEWAY = "gateways.demo.webapi.WebApiDemoGateway"
        settings.MT5_DEMO_URL = demo_url
        settings.MT5_DEMO_MANAGER_LOGIN = "2000"
        settings.MT5_DEMO_MANAGER_PASSWORD = MANAGER_PASSWORD
        settings.MT5_DEMO_SERVER = "Brokerdesk-Demo"
        settings.MT5_DEMO_TIME_OFFSET_SECONDS = 0
        settings.DEMO_REQUEST_TIMEOUT_SECONDS = 5
        reset_gateways()
        try:
            yield live, demo
        finally:
            reset_gateways()


def test_a_press_pass_gets_a_demo_account_made_by_user_add_and_loses_it_on_expiry(
    servers, make_user, as_user, pool_config, reveal
):
    seed_demo_accounts()  # the live server's own clients
    pool_config(min_available=0, target_buffer=3, provision_batch_size=3, group=DEMO_GROUP)
    with time_machine.travel("2030-01-01 12:00Z", tick=False) as clock:
        result = pool_refill()

        assert result.provisioned == 3
        made = SimulatedMT5Account.objects.filter(server="demo").order_by("login")
        assert [row.group for row in made] == [DEMO_GROUP] * 3
        ids = ProvisioningRequest.objects.values_list("idempotency_id", flat=True)
        assert {row.comment for row in made} == {marker(i) for i in ids}
        for row in made:  # each funded once, by trade/balance
            deals = SimulatedMT5Deal.objects.filter(account=row, action="balance")
            assert list(deals.values_list("profit", flat=True)) == [Decimal("50000.00")]

        admin_api = as_user(make_user(role=Role.SUPER_ADMIN))  # a token of the travelled time
        response = admin_api.post(ACTIVATE, BODY, format="json")

        assert response.status_code == 201
        body = response.json()
        login = body["account"]["login"]
        assert body["account"]["server"] == "Brokerdesk-Demo"
        assert body["account"]["balance"] == "50000.00"
        credentials = reveal(body["delivery"]["link"])
        assert credentials["login"] == login
        # The password delivered is the one the demo server now holds (rotated on assignment).
        assert DEMO_SERVER.password_matches(login, credentials["password"])
        assert get_demo_gateway().check_account(login).enabled

        # The live server knows nothing of the demo server's accounts.
        live_logins = get_mt5_gateway().list_logins()
        assert login not in live_logins and 10001 in live_logins
        assert get_mt5_gateway().get_accounts([login]) == {}

        clock.shift(7 * 86400 - 60)
        assert press_passes_expire_due()["expired"] == 0
        assert SimulatedMT5Account.objects.get(pk=login).enabled
        clock.shift(120)
        assert press_passes_expire_due()["expired"] == 1

    assert PressPass.objects.get().status == "expired"
    assert DemoAccount.objects.get(login=login).status == "expired"
    assert not SimulatedMT5Account.objects.get(pk=login).enabled
    assert not get_demo_gateway().check_account(login).enabled
    assert SimulatedMT5Account.objects.get(pk=10001).enabled  # the live client untouched


def test_a_lost_user_add_answer_during_the_refill_still_makes_one_account_per_request(
    servers, pool_config
):
    _, demo = servers
    demo.fail_next("/api/user/add", "drop", times=2)  # the first two creations: made, unanswered
    pool_config(min_available=0, target_buffer=3, provision_batch_size=3, group=DEMO_GROUP)

    result = pool_refill()

    assert result.provisioned == 3 and result.failed == 0
    assert SimulatedMT5Account.objects.filter(server="demo").count() == 3
    logins = set(DemoAccount.objects.values_list("login", flat=True))
    assert logins == set(
        SimulatedMT5Account.objects.filter(server="demo").values_list("login", flat=True)
    )
    assert SimulatedMT5Deal.objects.filter(account__server="demo").count() == 3
