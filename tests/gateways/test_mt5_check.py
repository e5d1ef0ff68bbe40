"""`manage.py mt5 check` and doctor's MT5 line, against the Web API stand-in over real HTTP(S).

Each test runs the command as an operator would (`manage.py mt5 check`): what it prints and
its exit status.
"""

import hashlib
import socket
import ssl
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gateways.errors import PermanentGatewayError
from gateways.loading import reset_gateways
from gateways.management.commands.mt5 import Command
from gateways.models import SimulatedMT5Deal
from gateways.mt5.simulated import SimulatedMT5Gateway
from gateways.mt5.webapi.check import (
    WEBAPI_GATEWAY,
    connect_error,
    format_offset,
    live_connection,
)
from gateways.mt5.webapi.gateway import WebApiMT5Gateway
from gateways.mt5.webapi.standin import MT5WebAPIStandIn
from tests.gateways.mt5_webapi_standin import MANAGER_LOGIN, MANAGER_PASSWORD, running_standin

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> tuple[int, str, str]:
    """`manage.py mt5 <args>`: (exit status, stdout, stderr), as a shell would see them."""
    out, err = StringIO(), StringIO()
    try:
        Command(stdout=out, stderr=err).run_from_argv(["manage.py", "mt5", *args])
        status = 0
    except SystemExit as exc:
        status = exc.code
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def webapi(settings):
    """Point the product at a stand-in: `webapi(**standin_kwargs)` -> the stand-in's url."""
    settings.MT5_GATEWAY = WEBAPI_GATEWAY
    settings.MT5_MANAGER_LOGIN = str(MANAGER_LOGIN)
    settings.MT5_MANAGER_PASSWORD = MANAGER_PASSWORD
    settings.MT5_WEBAPI_GROUP_MASK = "*"
    settings.MT5_WEBAPI_TIME_OFFSET_SECONDS = None
    settings.MT5_WEBAPI_CA_BUNDLE = ""
    settings.MT5_WEBAPI_CERT_SHA256 = ""
    settings.MT5_REQUEST_TIMEOUT_SECONDS = 5.0
    reset_gateways()
    yield settings
    reset_gateways()


def _accounts():
    gateway = SimulatedMT5Gateway()
    gateway.add_account(name="Ann", group="real\\pro", country="Japan", balance=100)
    gateway.add_account(name="Bob", group="real\\standard", country="Spain")
    gateway.add_account(name="Cid", group="real\\standard", country="Peru")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_reachable_server_shows_its_version_offset_groups_logins_and_rights(webapi):
    _accounts()
    with running_standin(groups=("demo\\empty",)) as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        status, out, err = run("check")

    assert status == 0, err
    assert f"MT5 server: {url}, manager {MANAGER_LOGIN}" in out
    assert "plain HTTP (allowed to a loopback stand-in only)" in out
    assert "access server 1290, trade server 1290" in out
    assert "trade server is UTC+0 h" in out
    groups = "demo\\empty, real\\pro, real\\standard"
    assert f"3 visible matching MT5_WEBAPI_GROUP_MASK=*: {groups}" in out
    assert "logins      3 in those groups" in out
    for right in (
        "Connect using MetaTrader 5 Manager",
        "Access to accounts",
        "Access to personal data",
        "Access to trade orders",
    ):
        assert any(line.split()[:1] == ["ok"] and right in line for line in out.splitlines())
    for right in ("Modify accounts", "Accountant", "Dealer (send dealer requests)"):
        line = next(line for line in out.splitlines() if right in line and "not probed" in line)
        assert line.split()[0] == "?"
    assert "MT5 server check passed" in out
    assert "Not probed (ask the MT5 administrator to confirm): Modify accounts, Accountant" in out


def test_the_group_mask_limits_the_groups_and_the_logins_counted(webapi):
    _accounts()
    with running_standin() as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        webapi.MT5_WEBAPI_GROUP_MASK = "real\\*,!real\\pro"
        status, out, err = run("check")

    assert status == 0, err
    assert "1 visible matching MT5_WEBAPI_GROUP_MASK=real\\*,!real\\pro: real\\standard" in out
    assert "logins      2 in those groups" in out


def test_a_server_three_hours_ahead_of_utc_shows_plus_three_hours(webapi):
    _accounts()
    with running_standin(time_offset_seconds=3 * 3600) as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        status, out, err = run("check")

    assert status == 0, err
    assert "trade server is UTC+3 h (measured: /api/time/server" in out


def test_a_configured_offset_that_the_server_contradicts_fails(webapi):
    with running_standin(time_offset_seconds=3 * 3600) as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        webapi.MT5_WEBAPI_TIME_OFFSET_SECONDS = 2 * 3600
        status, _out, err = run("check")

    assert status == 1
    assert "MT5_WEBAPI_TIME_OFFSET_SECONDS says UTC+2 h but the server is UTC+3 h" in err
    assert "Traceback" not in err


def test_offsets_read_as_hours_and_minutes():
    assert format_offset(0) == "UTC+0 h"
    assert format_offset(-4 * 3600) == "UTC-4 h"
    assert format_offset(5 * 3600 + 1800) == "UTC+5 h 30 min"


def test_a_wrong_password_fails_with_one_clear_line_and_exit_status_1(webapi):
    with running_standin() as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        webapi.MT5_MANAGER_PASSWORD = "not-the-password"
        status, out, err = run("check")

    assert status == 1
    assert err.strip().count("\n") == 0, err
    assert "refused the manager's password" in err
    assert "check MT5_MANAGER_PASSWORD" in err
    assert "not-the-password" not in out + err
    assert "Traceback" not in err


def test_an_unknown_manager_login_names_the_servers_retcode(webapi):
    with running_standin() as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        webapi.MT5_MANAGER_LOGIN = "4242"
        status, _out, err = run("check")

    assert status == 1
    assert "the server refused manager login 4242 (1001 Invalid account)" in err
    assert "check MT5_MANAGER_LOGIN" in err


@pytest.mark.parametrize(
    ("retcode", "setting"),
    [
        ("1002 Account disabled", "check MT5_MANAGER_LOGIN"),
        ("3006 Invalid account password", "check MT5_MANAGER_PASSWORD"),
        ("2 Common error", "check MT5_MANAGER_LOGIN and MT5_MANAGER_PASSWORD"),
    ],
)
def test_a_login_refused_by_retcode_names_the_setting_to_fix(webapi, retcode, setting):
    error = PermanentGatewayError(
        f"MT5 Web API refused the manager login: {retcode}", gateway="mt5", code="auth_failed"
    )

    message = connect_error(error, live_connection())

    assert f"({retcode}): {setting}" in message


def test_nothing_listening_fails_clearly(webapi):
    port = _free_port()
    webapi.MT5_WEBAPI_URL = f"http://127.0.0.1:{port}"
    status, _out, err = run("check")

    assert status == 1
    assert f"cannot connect to the MT5 Web API at 127.0.0.1:{port}" in err
    assert "Connection refused" in err
    assert "Traceback" not in err


def test_a_blank_url_with_the_webapi_gateway_is_a_failure(webapi):
    webapi.MT5_WEBAPI_URL = ""
    status, _out, err = run("check")

    assert status == 1
    assert "MT5_WEBAPI_URL is not set" in err


def test_tls_with_the_pinned_certificate_passes(webapi):
    _accounts()
    with running_standin(tls=True) as (url, server):
        der = ssl.PEM_cert_to_DER_cert(server.certificate_pem.decode())
        webapi.MT5_WEBAPI_URL = url
        webapi.MT5_WEBAPI_CERT_SHA256 = hashlib.sha256(der).hexdigest()
        status, out, err = run("check")

    assert status == 0, err
    assert "TLS, certificate pinned by MT5_WEBAPI_CERT_SHA256" in out
    assert "logins      3 in those groups" in out


def test_tls_with_a_private_ca_bundle_passes(webapi):
    with running_standin(tls=True) as (url, server):
        webapi.MT5_WEBAPI_URL = url
        webapi.MT5_WEBAPI_CA_BUNDLE = server.cafile
        status, out, err = run("check")

    assert status == 0, err
    assert "TLS, certificate verified against MT5_WEBAPI_CA_BUNDLE" in out


def test_an_untrusted_certificate_fails_and_says_how_to_trust_it(webapi):
    with running_standin(tls=True) as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        status, _out, err = run("check")

    assert status == 1
    assert "TLS: the server's certificate is not trusted" in err
    assert "set MT5_WEBAPI_CA_BUNDLE" in err
    assert "MT5_WEBAPI_CERT_SHA256" in err
    assert "Traceback" not in err


def test_a_pinned_certificate_that_does_not_match_fails(webapi):
    with running_standin(tls=True) as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        webapi.MT5_WEBAPI_CERT_SHA256 = "00" * 32
        status, _out, err = run("check")

    assert status == 1
    assert "TLS: the server's certificate does not match MT5_WEBAPI_CERT_SHA256" in err


@pytest.mark.parametrize(
    ("right", "refused"),
    [
        ("Access to trade orders", "deal/get_batch and position/get_batch answered retcode 8"),
        ("Access to accounts", "user/logins answered retcode 8"),
        ("the groups on the manager's Common tab", "group/total answered retcode 8"),
    ],
)
def test_a_right_the_server_refuses_is_named_and_fails_the_check(webapi, right, refused):
    _accounts()
    with running_standin(denied_rights=(right,)) as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        status, out, err = run("check")

    assert status == 1
    line = next(line for line in out.splitlines() if right in line)
    assert line.split()[0] == "MISSING"
    assert refused in line
    assert f"missing right {right!r}" in err


def test_no_group_matching_the_mask_is_a_missing_group_right(webapi):
    _accounts()
    with running_standin() as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        webapi.MT5_WEBAPI_GROUP_MASK = "vip\\*"
        status, out, err = run("check")

    assert status == 1
    assert "none of the 3 groups the manager sees matches MT5_WEBAPI_GROUP_MASK=vip\\*" in out
    assert 'missing right "the groups on the manager\'s Common tab"' in err


def test_empty_personal_fields_on_every_account_warn_without_failing(webapi):
    gateway = SimulatedMT5Gateway()
    gateway.add_account(name="", country="")
    gateway.add_account(name="", country="")
    with running_standin() as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        status, out, err = run("check")

    assert status == 0, err
    line = next(line for line in out.splitlines() if "Access to personal data" in line)
    assert line.split()[0] == "WARN"
    assert "empty on all 2 sampled account(s): probably not granted" in line


def test_no_account_in_the_groups_leaves_the_account_rights_unprobed(webapi):
    with running_standin(groups=("demo\\empty",)) as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        status, out, err = run("check")

    assert status == 0, err
    assert "logins      0 in those groups" in out
    line = next(line for line in out.splitlines() if "Access to trade orders" in line)
    assert line.split()[0] == "?"
    assert "no account in the groups to read" in line


def test_the_simulated_gateway_says_so_and_exits_0(settings):
    settings.MT5_GATEWAY = "gateways.mt5.simulated.SimulatedMT5Gateway"
    status, out, _err = run("check")

    assert status == 0
    assert "MT5_GATEWAY is the simulated server" in out
    assert "no MT5 Web API to check" in out


def test_demo_without_a_demo_server_says_not_configured_and_exits_0(settings):
    settings.MT5_DEMO_URL = ""
    status, out, _err = run("check", "--demo")

    assert status == 0
    assert "demo server: not configured (MT5_DEMO_URL is blank)" in out


def test_demo_checks_the_demo_servers_own_connection_and_group(webapi):
    webapi.MT5_DEMO_GROUP = "demo\\pool"  # the stand-in serves it from the start
    webapi.MT5_DEMO_MANAGER_LOGIN = "2000"
    webapi.MT5_DEMO_MANAGER_PASSWORD = "Demo-Pass-1"
    webapi.MT5_WEBAPI_URL = "http://127.0.0.1:1"  # the live server is not what is checked
    demo = {"manager_login": 2000, "manager_password": "Demo-Pass-1", "server": "demo"}
    with running_standin(**demo) as (url, _server):
        webapi.MT5_DEMO_URL = url
        status, out, err = run("check", "--demo")

    assert status == 0, err
    assert f"demo server: {url}, manager 2000" in out
    assert "1 visible matching MT5_DEMO_GROUP=demo\\pool: demo\\pool" in out
    assert "the demo group demo\\pool is visible" in out
    assert "Dealer" not in out  # the demo pool sends no dealer requests
    assert "demo server check passed" in out


def test_demo_with_a_group_the_server_does_not_have_fails(webapi):
    webapi.MT5_DEMO_GROUP = ""
    webapi.MT5_DEMO_MANAGER_LOGIN = str(MANAGER_LOGIN)
    webapi.MT5_DEMO_MANAGER_PASSWORD = MANAGER_PASSWORD
    with running_standin() as (url, _server):
        webapi.MT5_DEMO_URL = url
        webapi.MT5_DEMO_GROUP = "demo\\missing"
        status, _out, err = run("check", "--demo")

    assert status == 1
    assert "the demo group demo\\missing (MT5_DEMO_GROUP) does not exist on the server" in err


def test_demo_with_a_wrong_password_names_the_demo_setting(webapi):
    webapi.MT5_DEMO_GROUP = ""
    webapi.MT5_DEMO_MANAGER_LOGIN = str(MANAGER_LOGIN)
    webapi.MT5_DEMO_MANAGER_PASSWORD = "wrong"
    with running_standin() as (url, _server):
        webapi.MT5_DEMO_URL = url
        status, _out, err = run("check", "--demo")

    assert status == 1
    assert "check MT5_DEMO_MANAGER_PASSWORD" in err


def test_doctor_reports_the_web_api_check_as_one_ok_line(webapi, capsys):
    webapi.DEBUG = True  # the development key is accepted only while DEBUG is on
    _accounts()
    with running_standin() as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        call_command("doctor")
    out = capsys.readouterr().out

    lines = [line for line in out.splitlines() if "mt5 web api" in line]
    assert len(lines) == 1
    assert lines[0].startswith("ok   mt5 web api")
    assert f"{url}: access 1290, trade 1290, UTC+0 h, 3 group(s), 3 login(s)" in lines[0]
    assert "not probed (writes): Modify accounts, Accountant" in lines[0]
    assert "all checks passed" in out


def test_doctor_fails_on_the_web_api_line_with_the_reason(webapi, capsys):
    webapi.DEBUG = True
    with running_standin() as (url, _server):
        webapi.MT5_WEBAPI_URL = url
        webapi.MT5_MANAGER_PASSWORD = "not-the-password"
        with pytest.raises(CommandError, match="mt5 web api"):
            call_command("doctor")
    out = capsys.readouterr().out

    line = next(line for line in out.splitlines() if "mt5 web api" in line)
    assert line.startswith("FAIL mt5 web api")
    assert "refused the manager's password" in line


def test_doctor_has_no_web_api_line_with_the_simulated_gateway(settings, capsys):
    settings.DEBUG = True
    settings.MT5_GATEWAY = "gateways.mt5.simulated.SimulatedMT5Gateway"
    call_command("doctor")

    assert "mt5 web api" not in capsys.readouterr().out


def test_the_stand_in_refuses_a_denied_right_with_retcode_8_and_does_nothing():
    login = SimulatedMT5Gateway().add_account(balance=100)
    with running_standin(denied_rights=("Accountant",)) as (url, _server):
        gateway = WebApiMT5Gateway(url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD)
        with pytest.raises(PermanentGatewayError, match="Accountant") as refused:
            gateway.post_balance(login, Decimal(50), comment="op-denied")
        balance = gateway.get_states([login])[login].balance  # reads still answer
        gateway.client.close()

    assert refused.value.code == "missing_permission"
    assert balance == Decimal("100.00")
    assert not SimulatedMT5Deal.objects.filter(account_id=login, comment="op-denied").exists()


def test_the_stand_in_refuses_to_start_with_a_right_it_does_not_know():
    with pytest.raises(ValueError, match="unknown manager rights"):
        MT5WebAPIStandIn(
            "127.0.0.1", 0, manager_login=1, manager_password="x", denied_rights=("Root",)
        )
