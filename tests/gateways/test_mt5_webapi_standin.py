"""The MT5 Web API stand-in, over real HTTP on a loopback port, spoken to the way MetaQuotes'
samples speak: one keep-alive connection, GET with query parameters, JSON bodies on POST.

The server answers on its own threads with their own database connections, so these tests
commit what they write (transaction=True).
"""

import http.client
import json
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from urllib.parse import urlencode, urlsplit

import pytest
import time_machine
from django.core.management import call_command

from gateways.models import (
    SimulatedMT5Account,
    SimulatedMT5Deal,
    SimulatedMT5Position,
    SimulatorKnobs,
)
from gateways.mt5.simulated import SimulatedMT5Gateway
from gateways.mt5.webapi.handshake import pw_hash, rand_answer
from gateways.mt5.webapi.standin import MT5WebAPIStandIn
from tests.concurrency import run_at_once
from tests.gateways.mt5_webapi_standin import MANAGER_LOGIN, MANAGER_PASSWORD, running_standin

pytestmark = pytest.mark.django_db(transaction=True)

# The official vectors (spec 2.5).
SRV_RAND = "73007dc7184747ce0f7c98516ef1c851"
SRV_RAND_ANSWER = "77fe51827f7fa69dd80fbec9aa33f1bb"
CLI_RAND = "4db98fec17aab4dc5a240bdc659e8395"
CLI_RAND_ANSWER = "1732021b1b332f51660b2b315eed3a35"
START = {"version": "1290", "agent": "WebAPI", "login": str(MANAGER_LOGIN), "type": "manager"}
SIM = SimulatedMT5Gateway()


class Connection:
    """One keep-alive connection: the Web API session."""

    def __init__(self, url: str, *, context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
        if parts.scheme == "https":
            self.http = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=10, context=context
            )
        else:
            self.http = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def call(self, path: str, body=None, **params) -> tuple[int, dict | None]:
        target = f"{path}?{urlencode(params)}" if params else path
        if body is None:
            self.http.request("GET", target, headers={"Connection": "keep-alive"})
        else:
            self.http.request(
                "POST",
                target,
                body=json.dumps(body),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        response = self.http.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)

    def ok(self, path: str, body=None, **params) -> dict:
        status, answer = self.call(path, body, **params)
        assert status == 200, (path, status, answer)
        assert answer["retcode"] == "0 Done", (path, answer)
        return answer

    def login(self, password: str = MANAGER_PASSWORD) -> None:
        started = self.ok("/api/auth/start", **START)
        answer = rand_answer(pw_hash(password), started["srv_rand"])
        answered = self.ok("/api/auth/answer", srv_rand_answer=answer, cli_rand=CLI_RAND)
        assert answered["cli_rand_answer"] == CLI_RAND_ANSWER

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def standin():
    with running_standin(srv_rand=lambda: SRV_RAND) as (url, server):
        yield url, server


@pytest.fixture
def manager(standin):
    connection = Connection(standin[0])
    connection.login()
    yield connection
    connection.close()


def strings_only(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and strings_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(strings_only(item) for item in value)
    return isinstance(value, str)


def balance_of(login: int) -> tuple[Decimal, Decimal]:
    row = SimulatedMT5Account.objects.get(pk=login)
    return row.balance, row.credit


# --- Handshake and session ------------------------------------------------------------------------


def test_the_handshake_answers_the_official_vectors_with_top_level_fields(standin):
    connection = Connection(standin[0])

    started = connection.ok("/api/auth/start", **START)
    answered = connection.ok("/api/auth/answer", srv_rand_answer=SRV_RAND_ANSWER, cli_rand=CLI_RAND)

    assert list(started) == ["retcode", "version_access", "srv_rand"]
    assert started["srv_rand"] == SRV_RAND
    assert next(iter(answered)) == "retcode"
    assert answered["cli_rand_answer"] == CLI_RAND_ANSWER
    assert answered["version_access"] == answered["version_trade"] == "1290"
    assert connection.ok("/api/test/access") == {"retcode": "0 Done"}


def test_the_srv_rand_answer_is_compared_case_insensitively(standin):
    connection = Connection(standin[0])
    connection.ok("/api/auth/start", **START)

    connection.ok("/api/auth/answer", srv_rand_answer=SRV_RAND_ANSWER.upper(), cli_rand=CLI_RAND)


def test_a_real_random_srv_rand_is_32_hex_characters_and_changes():
    with running_standin() as (url, _server):
        connection = Connection(url)
        first = connection.ok("/api/auth/start", **START)["srv_rand"]
        second = connection.ok("/api/auth/start", **START)["srv_rand"]
        connection.login()

    assert len(first) == 32 and bytes.fromhex(first) and first != second


def test_every_call_before_auth_is_403(standin):
    connection = Connection(standin[0])

    for path in ("/api/test/access", "/api/user/get", "/api/trade/balance", "/api/quit"):
        assert connection.call(path, login="10001")[0] == 403
    connection.login()  # the same connection may still authenticate
    assert connection.ok("/api/test/access")


def test_a_new_connection_is_a_new_unauthenticated_session(standin, manager):
    other = Connection(standin[0])

    assert other.call("/api/test/access")[0] == 403
    assert manager.ok("/api/test/access")


def test_a_wrong_srv_rand_answer_is_403_and_forgets_the_start(standin):
    connection = Connection(standin[0])
    connection.ok("/api/auth/start", **START)
    wrong = rand_answer(pw_hash("password1"), SRV_RAND)

    assert connection.call("/api/auth/answer", srv_rand_answer=wrong, cli_rand=CLI_RAND)[0] == 403
    # The right answer to the forgotten start no longer opens the session.
    assert (
        connection.call("/api/auth/answer", srv_rand_answer=SRV_RAND_ANSWER, cli_rand=CLI_RAND)[0]
        == 403
    )
    assert connection.call("/api/test/access")[0] == 403


def test_the_hex_of_the_hash_instead_of_its_bytes_is_refused(standin):
    """The common client bug (spec 2.2): chaining hex text instead of raw digests."""
    import hashlib

    first = hashlib.md5(MANAGER_PASSWORD.encode("utf-16-le")).hexdigest().encode()  # noqa: S324
    hex_hash = hashlib.md5(first + b"WebAPI").digest()  # noqa: S324
    connection = Connection(standin[0])
    connection.ok("/api/auth/start", **START)

    status, _ = connection.call(
        "/api/auth/answer", srv_rand_answer=rand_answer(hex_hash, SRV_RAND), cli_rand=CLI_RAND
    )

    assert status == 403


def test_the_answer_must_come_within_10_seconds_of_the_start(standin):
    connection = Connection(standin[0])
    with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False) as clock:
        connection.ok("/api/auth/start", **START)
        clock.shift(timedelta(seconds=9.9))
        connection.ok("/api/auth/answer", srv_rand_answer=SRV_RAND_ANSWER, cli_rand=CLI_RAND)

        connection.ok("/api/auth/start", **START)
        clock.shift(timedelta(seconds=10.1))
        status, _ = connection.call(
            "/api/auth/answer", srv_rand_answer=SRV_RAND_ANSWER, cli_rand=CLI_RAND
        )

    assert status == 403
    assert connection.call("/api/test/access")[0] == 403  # a new start logs the session out


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"version": "483"}, "3 Invalid parameters"),
        ({"version": "abc"}, "3 Invalid parameters"),
        ({"agent": "Web API"}, "3 Invalid parameters"),
        ({"agent": ""}, "3 Invalid parameters"),
        ({"type": "client"}, "3 Invalid parameters"),
        ({"login": "1000x"}, "3 Invalid parameters"),
        ({"login": "1001"}, "1001 Invalid account"),
    ],
)
def test_auth_start_checks_its_parameters_with_a_retcode(standin, change, code):
    status, answer = Connection(standin[0]).call("/api/auth/start", **{**START, **change})

    assert (status, answer) == (200, {"retcode": code})


def test_quit_answers_then_closes_the_connection(standin, manager):
    assert manager.ok("/api/quit") == {"retcode": "0 Done"}

    # http.client reconnects on its own after the server closed: a new, unauthenticated session.
    assert manager.call("/api/test/access")[0] == 403


def test_an_idle_connection_is_dropped_and_a_request_keeps_it_alive():
    with running_standin(idle_timeout_seconds=0.5) as (url, _server):
        parts = urlsplit(url)
        raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
        raw.sendall(b"GET /api/test/access HTTP/1.1\r\nHost: x\r\n\r\n")
        first = raw.recv(4096)
        # Nothing more is sent: the server hangs up on its own (recv returns the end).
        rest = raw.recv(4096)
        raw.close()

    assert first.startswith(b"HTTP/1.1 403")
    assert rest == b""


def test_tls_with_the_generated_certificate():
    with running_standin(tls=True, srv_rand=lambda: SRV_RAND) as (url, server):
        context = ssl.create_default_context(cafile=server.cafile)
        connection = Connection(url, context=context)
        connection.login()
        assert connection.ok("/api/test/access")
        assert server.certificate_pem.startswith(b"-----BEGIN CERTIFICATE-----")


def test_a_tls_stand_in_keeps_no_private_key_on_disk_and_leaves_nothing_behind():
    """Found by a newcomer: every `--tls` run left its cert.pem and key.pem in /tmp."""
    from pathlib import Path

    with running_standin(tls=True) as (_url, server):
        folder = Path(server.cafile).parent
        assert sorted(p.name for p in folder.iterdir()) == ["cert.pem"]  # clients trust it
    assert not folder.exists()


def test_unknown_paths_are_404_and_posting_is_required_where_documented(manager):
    assert manager.call("/api/nothing/here")[0] == 404
    assert manager.call("/api/user/add", group="demo\\standard")[0] == 405


# --- Wire format ----------------------------------------------------------------------------------


def test_every_scalar_comes_back_as_a_string_with_retcode_first(manager):
    login = SIM.add_account(balance="1234.5", credit="10", leverage=200)
    SIM.open_position(login, symbol="EURUSD", side="buy", volume="1.5", profit="-20")

    start, end = 0, 4_000_000_000
    answers = [
        manager.ok("/api/user/get", login=login),
        manager.ok("/api/user/get_batch", login=login),
        manager.ok("/api/user/account/get", login=login),
        manager.ok("/api/deal/get_batch", login=login, **{"from": start, "to": end}),
        manager.ok("/api/position/get_batch", login=login),
        manager.ok("/api/user/logins", group="*"),
        manager.ok("/api/group/get", mask="*"),
        manager.ok("/api/time/server"),
    ]

    assert all(next(iter(answer)) == "retcode" for answer in answers)
    assert all(strings_only(answer) for answer in answers)
    user, account = answers[0]["answer"], answers[2]["answer"]
    assert (user["Login"], user["Balance"], user["Credit"], user["Leverage"]) == (
        str(login),
        "1234.50",
        "10.00",
        "200",
    )
    assert len(user["ApiData"]) == 16
    assert (account["Equity"], account["Floating"], account["MarginFree"]) == (
        "1224.50",
        "-20.00",
        "1224.50",
    )
    position = answers[4]["answer"][0]
    assert (position["Action"], position["Volume"], position["VolumeExt"]) == (
        "0",
        "15000",
        "150000000",
    )


def test_escaped_group_names_mean_the_same_group(manager):
    login = SIM.add_account(group="real\\standard")

    plain = manager.ok("/api/user/logins", group="real\\standard")["answer"]
    escaped = manager.ok("/api/user/logins", group="real\\\\standard")["answer"]

    assert plain == escaped == [str(login)]


# --- trade/balance --------------------------------------------------------------------------------


def test_a_deposit_books_a_balance_deal_and_moves_the_balance(manager):
    login = SIM.add_account(balance="100")

    ticket = manager.ok(
        "/api/trade/balance", login=login, type="2", balance="50.25", comment="psp-123"
    )["answer"]["Ticket"]
    deal = manager.ok("/api/deal/get", ticket=ticket)["answer"]

    assert balance_of(login) == (Decimal("150.25"), Decimal("0"))
    assert (deal["Action"], deal["Entry"], deal["Profit"], deal["Comment"]) == (
        "2",
        "0",
        "50.25",
        "psp-123",
    )
    assert (deal["Symbol"], deal["Volume"], deal["Login"]) == ("", "0", str(login))


def test_credit_goes_to_credit_and_charges_and_corrections_to_the_balance(manager):
    login = SIM.add_account(balance="100")

    manager.ok("/api/trade/balance", login=login, type="3", balance="30", comment="bonus")
    manager.ok("/api/trade/balance", login=login, type="4", balance="-5", comment="fee")
    manager.ok("/api/trade/balance", login=login, type="5", balance="2", comment="fix")

    assert balance_of(login) == (Decimal("97"), Decimal("30"))
    actions = SimulatedMT5Deal.objects.filter(account_id=login).order_by("ticket")
    assert list(actions.values_list("action", flat=True)) == [
        "balance",
        "credit",
        "charge",
        "correction",
    ]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"type": "2", "balance": "-100.01"}, "10019 Not enough money"),  # beyond the balance
        ({"type": "3", "balance": "-10.01"}, "10019 Not enough money"),  # beyond the credit
        ({"type": "2", "balance": "-90", "check_margin": "1"}, "10019 Not enough money"),
        ({"type": "2", "balance": "1000000000.01"}, "4005 Money limit reached"),
        ({"type": "2", "balance": "-1000000001"}, "4005 Money limit reached"),
        ({"type": "1", "balance": "10"}, "3 Invalid parameters"),
        ({"type": "7", "balance": "10"}, "3 Invalid parameters"),
        ({"type": "2", "balance": "0"}, "3 Invalid parameters"),
        ({"type": "2", "balance": "ten"}, "3 Invalid parameters"),
        ({"type": "2", "balance": "NaN"}, "3 Invalid parameters"),
        ({"type": "2"}, "3 Invalid parameters"),
    ],
)
def test_trade_balance_refusals_are_retcodes_and_change_nothing(manager, params, code):
    login = SIM.add_account(balance="100", credit="10")
    # Equity 100 + 10 - 30 = 80 free margin: a 90 withdrawal fits the balance, not the margin.
    SIM.open_position(login, symbol="EURUSD", side="buy", volume="1", profit="-30")
    deals = SimulatedMT5Deal.objects.count()

    status, answer = manager.call("/api/trade/balance", login=login, comment="x", **params)

    assert (status, answer) == (200, {"retcode": code})
    assert balance_of(login) == (Decimal("100"), Decimal("10"))
    assert SimulatedMT5Deal.objects.count() == deals


def test_check_margin_0_lets_a_withdrawal_past_the_free_margin_up_to_the_balance(manager):
    login = SIM.add_account(balance="100")
    SIM.open_position(login, symbol="EURUSD", side="buy", volume="1", profit="-30")

    manager.ok("/api/trade/balance", login=login, type="2", balance="-90", check_margin="0")

    assert balance_of(login) == (Decimal("10"), Decimal("0"))


def test_an_unknown_login_is_13(manager):
    _, answer = manager.call("/api/trade/balance", login="999999", type="2", balance="1")

    assert answer == {"retcode": "13 Not found"}


def test_a_comment_longer_than_31_characters_is_cut_not_refused(manager):
    login = SIM.add_account(balance="100")
    comment = "bonus:" + "a" * 40

    ticket = manager.ok("/api/trade/balance", login=login, type="3", balance="5", comment=comment)[
        "answer"
    ]["Ticket"]

    assert manager.ok("/api/deal/get", ticket=ticket)["answer"]["Comment"] == comment[:31]
    assert SimulatedMT5Deal.objects.get(pk=ticket).comment == comment[:31]


# --- Lists ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/user/get_batch", "/api/user/account/get_batch", "/api/position/get_batch"]
)
def test_get_batch_takes_one_list_only(manager, path):
    login = SIM.add_account()
    SIM.open_position(login, symbol="EURUSD", side="buy", volume="1")

    both = manager.call(path, login=login, group="*")[1]
    neither = manager.call(path)[1]

    assert both == neither == {"retcode": "3 Invalid parameters"}
    assert manager.ok(path, login=login)["answer"]


def test_deal_get_batch_takes_one_list_and_needs_from_and_to_for_logins_and_groups(manager):
    login = SIM.add_account(balance="10")
    ticket = SimulatedMT5Deal.objects.get(account_id=login).ticket
    window = {"from": 0, "to": 4_000_000_000}

    assert manager.call("/api/deal/get_batch", login=login)[1]["retcode"] == "3 Invalid parameters"
    assert manager.call("/api/deal/get_batch", group="*")[1]["retcode"] == "3 Invalid parameters"
    both = manager.call("/api/deal/get_batch", login=login, ticket=ticket, **window)[1]
    assert both["retcode"] == "3 Invalid parameters"
    by_ticket = manager.ok("/api/deal/get_batch", ticket=ticket)["answer"]
    by_login = manager.ok("/api/deal/get_batch", login=login, **window)["answer"]
    posted = manager.ok("/api/deal/get_batch", {"login": [str(login)]}, **window)["answer"]
    assert [d["Deal"] for d in by_ticket] == [d["Deal"] for d in by_login] == [str(ticket)]
    assert posted == by_login


def test_group_masks_take_stars_and_exclusions(manager):
    standard = SIM.add_account(group="real\\standard")
    vip = SIM.add_account(group="real\\vip")
    demo = SIM.add_account(group="demo\\standard")

    def logins(mask):
        return manager.ok("/api/user/logins", group=mask)["answer"]

    assert logins("real*") == [str(standard), str(vip)]
    assert logins("real*,!real\\vip") == [str(standard)]
    assert logins("*,!demo*") == [str(standard), str(vip)]
    assert logins("!real*") == [str(demo)]
    assert logins("REAL\\VIP") == [str(vip)]
    batch = manager.ok("/api/user/get_batch", group="real*,!*standard")["answer"]
    assert [user["Login"] for user in batch] == [str(vip)]


def test_get_page_gives_at_most_100(manager):
    login = SIM.add_account()
    SimulatedMT5Deal.objects.bulk_create(
        SimulatedMT5Deal(account_id=login, action="balance", profit=1) for _ in range(130)
    )
    window = {"from": 0, "to": 4_000_000_000}

    total = manager.ok("/api/deal/get_total", login=login, **window)["answer"]["Total"]
    page = manager.ok("/api/deal/get_page", login=login, offset=0, total=500, **window)
    tail = manager.ok("/api/deal/get_page", login=login, offset=100, total=100, **window)

    assert total == "130"
    assert len(page["answer"]) == 100
    assert len(tail["answer"]) == 30


# --- Users ----------------------------------------------------------------------------------------


def demo_user(**changes):
    return {"PassMain": "1Ar#pqkj", "PassInvestor": "2Ar#pqkj", "Country": "Portugal", **changes}


def test_user_add_allocates_a_login_given_at_the_top_level_and_in_the_answer(manager):
    added = manager.ok(
        "/api/user/add",
        demo_user(LeadSource="press-pass"),
        group="demo\\standard",
        name="JohnSmith",
        leverage="100",
    )

    row = SimulatedMT5Account.objects.get(pk=int(added["login"]))
    assert list(added) == ["retcode", "login", "answer"]
    assert added["answer"]["Login"] == added["login"]
    assert (row.group, row.name, row.leverage, row.country, row.lead_source) == (
        "demo\\standard",
        "JohnSmith",
        100,
        "Portugal",
        "press-pass",
    )
    assert row.balance == 0
    assert SIM.password_matches(row.login, "1Ar#pqkj")


def test_user_add_body_fields_override_the_query(manager):
    added = manager.ok(
        "/api/user/add",
        demo_user(Leverage="200", Name="Body Name"),
        group="demo\\standard",
        name="Query",
        leverage="100",
    )

    assert (added["answer"]["Leverage"], added["answer"]["Name"]) == ("200", "Body Name")


@pytest.mark.parametrize(
    ("body", "query", "code"),
    [
        (demo_user(PassMain="password1"), {}, "3006 Invalid account password"),
        (demo_user(PassMain="Sh0rt#"), {}, "3006 Invalid account password"),
        (demo_user(PassInvestor="NoDigits#"), {}, "3006 Invalid account password"),
        (demo_user(PassMain="Much2Long#Password"), {}, "3006 Invalid account password"),
        (demo_user(), {"leverage": "0"}, "3 Invalid parameters"),
        (demo_user(), {"leverage": "501"}, "3 Invalid parameters"),
        (demo_user(), {"group": "demo\\nowhere"}, "8 Not enough permissions"),
        (demo_user(), {"name": ""}, "3 Invalid parameters"),
        (demo_user(), {"name": "x" * 128}, "3 Invalid parameters"),
    ],
)
def test_user_add_rules(manager, body, query, code):
    before = SimulatedMT5Account.objects.count()
    params = {"group": "demo\\standard", "name": "John", "leverage": "100", **query}

    status, answer = manager.call("/api/user/add", body, **params)

    assert (status, answer) == (200, {"retcode": code})
    assert SimulatedMT5Account.objects.count() == before


def test_user_add_with_a_taken_login_is_3004(manager):
    login = SIM.add_account()

    _, answer = manager.call(
        "/api/user/add", demo_user(Login=str(login)), group="real\\standard", name="A", leverage=1
    )

    assert answer == {"retcode": "3004 Account already exists"}


def test_user_update_changes_what_is_passed_and_ignores_bad_values(manager):
    login = SIM.add_account(leverage=100, name="Old")

    updated = manager.ok("/api/user/update", {"Leverage": "300"}, login=login)["answer"]
    kept = manager.ok("/api/user/update", {"Leverage": "0"}, login=login)["answer"]
    disabled = manager.ok("/api/user/update", {"Rights": "2530"}, login=login)["answer"]

    assert (updated["Leverage"], updated["Name"]) == ("300", "Old")
    assert kept["Leverage"] == "300"
    assert disabled["Rights"] == "2530"
    assert SimulatedMT5Account.objects.get(pk=login).enabled is False
    assert manager.call("/api/user/update", {"Leverage": "2"}, login="999999")[1] == {
        "retcode": "13 Not found"
    }


def test_change_password_then_check_password(manager):
    login = SIM.add_account()

    manager.ok(
        "/api/user/change_password", {"Login": str(login), "Type": "main", "Password": "ps12Rt12"}
    )
    weak = manager.call("/api/user/change_password", login=login, type="main", password="short")

    assert weak[1] == {"retcode": "3006 Invalid account password"}
    assert SIM.password_matches(login, "ps12Rt12")
    manager.ok("/api/user/check_password", login=login, type="main", password="ps12Rt12")
    wrong = manager.call("/api/user/check_password", login=login, type="main", password="nope1234")
    assert wrong[1] == {"retcode": "3006 Invalid account password"}


# --- Dealer requests ------------------------------------------------------------------------------


def poll_result(manager, request_id: str) -> dict:
    for _ in range(500):
        answer = manager.ok("/api/dealer/get_request_result", id=request_id)
        if answer[request_id]:
            return answer
    raise AssertionError("the dealer request never finished")


def test_closing_a_position_is_queued_and_its_result_polled_later(manager):
    login = SIM.add_account(balance="1000")
    ticket = SIM.open_position(login, symbol="EURUSD", side="buy", volume="2", profit="-125.5")

    sent = manager.ok(
        "/api/dealer/send_request",
        {
            "Action": "200",
            "Login": str(login),
            "Symbol": "EURUSD",
            "Position": str(ticket),
            "Type": "1",
            "Volume": "20000",
            "TypeFill": "0",
            "PriceOrder": "0",
            "Digits": "5",
            "Comment": "close:" + "z" * 40,
        },
    )
    request_id = sent["answer"]["ID"]
    result = poll_result(manager, request_id)

    events = result[request_id]
    assert result["answer"][request_id] == events  # both reader styles
    final = events[1]["answer"]
    assert (final["ResultRetcode"], events[0]["result"]["Retcode"]) == ("10009", "10009")
    deal = manager.ok("/api/deal/get", ticket=final["ResultDeal"])["answer"]
    assert (deal["Entry"], deal["Action"], deal["Profit"], deal["PositionID"]) == (
        "1",
        "1",
        "-125.50",
        str(ticket),
    )
    assert deal["Comment"] == ("close:" + "z" * 40)[:31]
    assert not SimulatedMT5Position.objects.filter(pk=ticket).exists()
    assert balance_of(login)[0] == Decimal("874.50")
    # A final result is handed out once: the subscription is gone.
    assert manager.ok("/api/dealer/get_request_result", id=request_id)[request_id] == []


def test_a_dealer_request_for_a_missing_position_is_rejected_in_its_result(manager):
    login = SIM.add_account(balance="10")

    request_id = manager.ok(
        "/api/dealer/send_request",
        {"Action": "200", "Login": str(login), "Position": "987654", "Type": "1", "Digits": "5"},
    )["answer"]["ID"]

    assert poll_result(manager, request_id)[request_id][1]["answer"]["ResultRetcode"] == "10006"


def test_send_request_needs_a_post_body_with_a_dealer_action(manager):
    assert manager.call("/api/dealer/send_request", {"Action": "0", "Login": "1"})[1] == {
        "retcode": "3 Invalid parameters"
    }
    assert manager.call("/api/dealer/send_request", ["x"])[1] == {"retcode": "3 Invalid parameters"}


def test_dealer_results_belong_to_the_connection_that_sent_them(standin, manager):
    login = SIM.add_account(balance="10")
    ticket = SIM.open_position(login, symbol="EURUSD", side="sell", volume="1", profit="3")
    request_id = manager.ok(
        "/api/dealer/send_request",
        {"Action": "200", "Login": str(login), "Position": str(ticket), "Type": "0"},
    )["answer"]["ID"]
    other = Connection(standin[0])
    other.login()

    poll_result(manager, request_id)

    assert other.ok("/api/dealer/get_request_result", id=request_id)[request_id] == []


# --- Time -----------------------------------------------------------------------------------------


def test_times_are_trade_server_time_three_hours_ahead_of_utc():
    offset = 3 * 3600
    moment = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        login = SIM.add_account(balance="100")
        with running_standin(time_offset_seconds=offset) as (url, _server):
            manager = Connection(url)
            manager.login()
            server_time = manager.ok("/api/time/server")["answer"]["Time"]
            utc_seconds = int(moment.timestamp())
            in_server_window = manager.ok(
                "/api/deal/get_batch",
                login=login,
                **{"from": utc_seconds + offset - 1, "to": utc_seconds + offset + 1},
            )["answer"]
            in_utc_window = manager.ok(
                "/api/deal/get_batch",
                login=login,
                **{"from": utc_seconds - 1, "to": utc_seconds + 1},
            )["answer"]
            user = manager.ok("/api/user/get", login=login)["answer"]

    assert server_time == f"{utc_seconds + offset} 2026.03.01 15:00:00"
    assert [deal["Time"] for deal in in_server_window] == [str(utc_seconds + offset)]
    assert in_server_window[0]["TimeMsc"] == str((utc_seconds + offset) * 1000)
    assert in_utc_window == []
    assert user["Registration"] == str(utc_seconds + offset)


# --- Fault knobs ----------------------------------------------------------------------------------


def knobs(**fields) -> None:
    SimulatorKnobs.objects.update_or_create(server="mt5_webapi", defaults=fields)


def test_the_403_knob_forgets_the_session(manager):
    knobs(forbidden_rate=1)
    assert manager.call("/api/user/total")[0] == 403

    knobs(forbidden_rate=0)
    assert manager.call("/api/user/total")[0] == 403  # the session is gone until a new login
    manager.login()
    assert manager.ok("/api/user/total")


@pytest.mark.parametrize("code", [8, 9, 13, 10019])
def test_the_error_knob_answers_its_retcode_and_does_nothing(manager, code):
    login = SIM.add_account(balance="100")
    knobs(error_rate=1, fault_retcode=code)

    status, answer = manager.call("/api/trade/balance", login=login, type="2", balance="5")

    assert status == 200 and answer["retcode"].startswith(f"{code} ")
    assert balance_of(login)[0] == Decimal("100")
    assert manager.ok("/api/test/access")  # pings are spared, the session stays


def test_the_drop_knob_does_the_work_then_hangs_up_unanswered(manager):
    login = SIM.add_account(balance="100")
    knobs(drop_rate=1)

    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        manager.call("/api/trade/balance", login=login, type="2", balance="5", comment="op-1")

    knobs(drop_rate=0)
    # The outcome was unknown to the client; the deal is there to be found by its comment.
    assert balance_of(login)[0] == Decimal("105")
    assert SimulatedMT5Deal.objects.filter(account_id=login, comment="op-1").count() == 1
    assert manager.call("/api/test/access")[0] == 403  # a new connection, a new session


def test_the_latency_knob_slows_the_answer_after_the_work(standin, manager):
    login = SIM.add_account(balance="100")
    knobs(latency_ms=300)

    started = time.monotonic()
    manager.ok("/api/trade/balance", login=login, type="2", balance="5", comment="slow")

    assert time.monotonic() - started >= 0.3
    assert balance_of(login)[0] == Decimal("105")


# --- The operator command -------------------------------------------------------------------------


def test_the_command_prints_where_it_serves(monkeypatch):
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(MT5WebAPIStandIn, "serve_forever", interrupted)
    out = StringIO()

    call_command(
        "mt5_webapi_standin",
        "--port",
        "0",
        "--time-offset-seconds",
        "10800",
        "--manager-login",
        "1000",
        "--manager-password",
        "Password1",
        stdout=out,
    )

    assert "MT5 Web API stand-in on http://127.0.0.1:" in out.getvalue()
    assert "UTC+10800 s" in out.getvalue()


# --- Races (PostgreSQL) ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_ten_sessions_withdrawing_at_once_never_take_the_balance_below_zero(standin):
    login = SIM.add_account(balance="100")
    sessions = [Connection(standin[0]) for _ in range(10)]
    for session in sessions:
        session.login()

    results, errors = run_at_once(
        lambda n: sessions[n].call(
            "/api/trade/balance", login=login, type="2", balance="-30", comment=f"w{n}"
        )[1]["retcode"],
        10,
    )

    assert errors == []
    assert sorted(results) == ["0 Done"] * 3 + ["10019 Not enough money"] * 7
    assert balance_of(login)[0] == Decimal("10")
    assert SimulatedMT5Deal.objects.filter(account_id=login, profit=-30).count() == 3


@pytest.mark.postgres
def test_ten_sessions_adding_users_at_once_get_ten_different_logins(standin):
    sessions = [Connection(standin[0]) for _ in range(10)]
    for session in sessions:
        session.login()

    results, errors = run_at_once(
        lambda n: sessions[n].ok(
            "/api/user/add", demo_user(), group="demo\\standard", name=f"User{n}", leverage="100"
        )["login"],
        10,
    )

    assert errors == []
    assert len(set(results)) == 10
    assert SimulatedMT5Account.objects.filter(group="demo\\standard").count() == 10


def test_a_body_that_is_not_json_is_3_and_the_session_goes_on(manager):
    manager.http.request(
        "POST", "/api/user/update?login=1", body=b"{nope", headers={"Content-Type": "x"}
    )
    response = manager.http.getresponse()

    assert (response.status, json.loads(response.read())) == (
        200,
        {"retcode": "3 Invalid parameters"},
    )
    assert manager.ok("/api/test/access")


def test_a_client_failing_the_tls_handshake_does_not_stop_the_server():
    with running_standin(tls=True, srv_rand=lambda: SRV_RAND) as (url, server):
        parts = urlsplit(url)
        plain = socket.create_connection((parts.hostname, parts.port), timeout=10)
        plain.sendall(b"GET /api/test/access HTTP/1.1\r\n\r\n")  # HTTP on a TLS port
        plain.recv(100)
        plain.close()
        connection = Connection(url, context=ssl.create_default_context(cafile=server.cafile))
        connection.login()


def test_the_command_stopped_by_sigterm_removes_its_certificate():
    """honcho and service managers stop the stand-in with SIGTERM, not Ctrl-C."""
    import re
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings as django_settings

    command = [sys.executable, "manage.py", "mt5_webapi_standin", "--port", "0", "--tls"]
    process = subprocess.Popen(
        command,
        cwd=Path(django_settings.BASE_DIR),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in process.stdout:  # waits for the server's own words, not for time
            lines.append(line)
            if "self-signed certificate:" in line:
                break
        [cafile] = re.findall(r"self-signed certificate: (\S+)", "".join(lines))
        assert Path(cafile).exists()
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert not Path(cafile).parent.exists()
