"""The Web API stand-in as a second server, the broker's demo server (`server="demo"`): its
own accounts, logins, groups and knobs, never the live server's; and the account Comment
user/add stores, cut to 31 characters.

The server answers on its own threads with their own database connections, so these tests
commit what they write (transaction=True).
"""

from io import StringIO

import pytest
from django.core.management import call_command

from gateways.models import SimulatedMT5Account, SimulatedMT5Deal, SimulatorKnobs
from gateways.mt5.simulated import SimulatedMT5Gateway
from gateways.mt5.webapi.standin import MT5WebAPIStandIn
from tests.gateways.mt5_webapi_standin import running_standin
from tests.gateways.test_mt5_webapi_standin import Connection, demo_user

pytestmark = pytest.mark.django_db(transaction=True)

LIVE = SimulatedMT5Gateway()
DEMO = SimulatedMT5Gateway(server="demo")


@pytest.fixture
def demo(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MT5_DEMO_GROUP = "demo\\pool"
    with running_standin(server="demo", groups=()) as (url, _):
        connection = Connection(url)
        connection.login()
        yield connection
        connection.close()


def add(connection, **changes) -> dict:
    body = demo_user(**changes)
    return connection.ok("/api/user/add", body, group="demo\\pool", name="Ada", leverage="100")


def test_the_demo_server_has_the_demo_group_and_hands_out_logins_of_its_own_range(demo):
    live_login = LIVE.add_account(group="real\\standard")

    added = add(demo, Comment="bd:dp0123")

    row = SimulatedMT5Account.objects.get(pk=int(added["login"]))
    assert row.server == "demo" and row.login >= 50_000_001 and live_login < 50_000_000
    assert added["answer"]["Comment"] == "bd:dp0123"
    got = demo.ok("/api/user/get_batch", login=row.login)["answer"]
    assert [user["Comment"] for user in got] == ["bd:dp0123"]
    assert demo.ok("/api/group/get", group="demo\\pool")["answer"]["Group"] == "demo\\pool"


def test_a_comment_longer_than_31_characters_is_cut_not_refused(demo):
    added = add(demo, Comment="c" * 40)

    assert added["answer"]["Comment"] == "c" * 31


def test_the_demo_server_does_not_see_the_live_servers_accounts_groups_or_deals(demo):
    login = LIVE.add_account(group="real\\standard", balance=100)
    ticket = SimulatedMT5Deal.objects.get(account_id=login).ticket

    assert demo.call("/api/user/get", login=login)[1] == {"retcode": "13 Not found"}
    assert demo.ok("/api/user/get_batch", login=login)["answer"] == []
    assert demo.ok("/api/user/logins", group="*")["answer"] == []
    assert demo.ok("/api/deal/get_batch", ticket=ticket)["answer"] == []
    assert demo.call("/api/trade/balance", login=login, type=2, balance=5)[1] == {
        "retcode": "13 Not found"
    }
    _, refused = demo.call(
        "/api/user/add", demo_user(), group="real\\standard", name="Ada", leverage="100"
    )
    assert refused == {"retcode": "8 Not enough permissions"}
    assert LIVE.get_accounts([login])[login].balance == 100


def test_the_live_server_does_not_see_the_demo_servers_accounts(demo):
    login = int(add(demo)["login"])

    assert login not in LIVE.list_logins()
    assert LIVE.get_accounts([login]) == {}
    assert DEMO.list_logins() == [login]
    with running_standin() as (url, _):
        live = Connection(url)
        live.login()
        assert live.call("/api/user/get", login=login)[1] == {"retcode": "13 Not found"}
        live.close()


def test_the_demo_server_reads_its_own_knobs_not_the_live_ones(demo):
    SimulatorKnobs.objects.create(server="mt5_webapi", error_rate=1, fault_retcode=9)

    assert demo.ok("/api/user/logins", group="*")["answer"] == []

    SimulatorKnobs.objects.create(server="mt5_webapi_demo", error_rate=1, fault_retcode=9)
    assert demo.call("/api/user/logins", group="*")[1] == {"retcode": "9 Operation timeout"}


def test_an_unknown_server_is_refused():
    with pytest.raises(ValueError, match="live, demo"):
        MT5WebAPIStandIn("127.0.0.1", 0, manager_login=1, manager_password="x", server="paper")


def test_the_command_serves_the_demo_server_for_the_demo_manager(monkeypatch, settings):
    settings.MT5_DEMO_MANAGER_LOGIN = "2000"
    settings.MT5_DEMO_MANAGER_PASSWORD = "Password1"
    served = {}

    def interrupted(self):
        served.update(server=self.server, manager=self.manager_login)
        raise KeyboardInterrupt

    monkeypatch.setattr(MT5WebAPIStandIn, "serve_forever", interrupted)
    out = StringIO()

    call_command("mt5_webapi_standin", "--port", "0", "--server", "demo", stdout=out)

    assert served == {"server": "demo", "manager": "2000"}
    assert "MT5 Web API stand-in (demo server) on http://127.0.0.1:" in out.getvalue()
