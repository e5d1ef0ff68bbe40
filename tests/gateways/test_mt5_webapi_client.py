"""The MT5 Manager Web API client: the handshake on the official vectors, retcodes and strings
parsed, and the session against the stand-in over real HTTP on loopback (one connection, a
drop, a 403, the 20 s ping, TLS, a server three hours ahead)."""

import hashlib
import ssl
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateways.errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError
from gateways.loading import reset_gateways
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal, SimulatorKnobs
from gateways.mt5 import AccountState, DealAction, DealEntry, get_mt5_gateway
from gateways.mt5.simulated import SimulatedMT5Gateway
from gateways.mt5.webapi.client import (
    WebApiClient,
    parse_decimal,
    parse_int,
    parse_money,
    parse_server_time,
    query_string,
    retcode_error,
    retcode_number,
)
from gateways.mt5.webapi.gateway import DEAL_WINDOW_OVERLAP, WebApiMT5Gateway, mask_matches
from gateways.mt5.webapi.handshake import HandshakeError, authenticate, pw_hash, rand_answer
from tests.gateways.mt5_webapi_standin import MANAGER_LOGIN, MANAGER_PASSWORD, running_standin

# --- The handshake (spec 2.5) --------------------------------------------------------------


def test_the_password_hash_and_both_answers_match_the_official_vectors():
    first = hashlib.md5("Password1".encode("utf-16-le")).digest()  # noqa: S324
    assert list(first) == [
        236,
        46,
        146,
        255,
        112,
        191,
        70,
        145,
        174,
        12,
        104,
        224,
        47,
        220,
        108,
        34,
    ]

    secret = pw_hash("Password1")

    assert secret.hex() == "904ba8ecb16273d2f0ae9c3b8a023752"
    assert len(secret) == 16  # raw bytes, not hex text
    assert rand_answer(secret, "73007dc7184747ce0f7c98516ef1c851") == (
        "77fe51827f7fa69dd80fbec9aa33f1bb"
    )
    assert rand_answer(secret, "4db98fec17aab4dc5a240bdc659e8395") == (
        "1732021b1b332f51660b2b315eed3a35"
    )


def test_the_handshake_sends_the_vector_answer_and_checks_the_servers():
    sent = []

    def server(path, params):
        sent.append((path, dict(params)))
        if path == "/api/auth/start":
            return {"retcode": "0 Done", "srv_rand": "73007dc7184747ce0f7c98516ef1c851"}
        return {
            "retcode": "0 Done",
            "version_access": "1290",
            "version_trade": "1290",
            "cli_rand_answer": "1732021b1b332f51660b2b315eed3a35",
        }

    versions = authenticate(
        server, login=1000, password="Password1", cli_rand="4db98fec17aab4dc5a240bdc659e8395"
    )

    assert versions == {"version_access": "1290", "version_trade": "1290"}
    start, answer = sent
    assert start[1]["type"] == "manager" and start[1]["login"] == 1000
    assert int(start[1]["version"]) >= 484 and " " not in start[1]["agent"]
    assert answer[1] == {
        "srv_rand_answer": "77fe51827f7fa69dd80fbec9aa33f1bb",
        "cli_rand": "4db98fec17aab4dc5a240bdc659e8395",
    }


def test_a_server_that_cannot_answer_our_challenge_is_not_trusted():
    def impostor(path, params):
        if path == "/api/auth/start":
            return {"retcode": "0 Done", "srv_rand": "73007dc7184747ce0f7c98516ef1c851"}
        return {"retcode": "0 Done", "cli_rand_answer": "0" * 32}

    with pytest.raises(HandshakeError) as caught:
        authenticate(impostor, login=1000, password="Password1")

    assert caught.value.retcode == 1008


# --- Retcodes and strings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("retcode", "number"),
    [("0 Done", 0), ("10019 Not enough money", 10019), ("13", 13), (" 8 Not enough", 8)],
)
def test_a_retcode_is_read_by_its_leading_integer(retcode, number):
    assert retcode_number(retcode) == number


@pytest.mark.parametrize(
    ("code", "path", "no_money", "kind", "error_code"),
    [
        (13, "/api/user/update", "", PermanentGatewayError, "account_not_found"),
        (10019, "/api/trade/balance", "insufficient_balance", PermanentGatewayError, None),
        (10019, "/api/trade/balance", "insufficient_credit", PermanentGatewayError, None),
        (8, "/api/trade/balance", "", PermanentGatewayError, "missing_permission"),
        (3, "/api/trade/balance", "", PermanentGatewayError, "invalid_amount"),
        (4005, "/api/trade/balance", "", PermanentGatewayError, "invalid_amount"),
        (3006, "/api/user/add", "", PermanentGatewayError, "invalid_password"),
        (9, "/api/user/get_batch", "", TransientGatewayError, "retcode_9"),
        (10, "/api/trade/balance", "", TransientGatewayError, "retcode_10"),
        (12, "/api/deal/get_batch", "", TransientGatewayError, "retcode_12"),
    ],
)
def test_retcodes_become_the_products_errors(code, path, no_money, kind, error_code):
    error = retcode_error(code, "text", path=path, no_money=no_money or "insufficient_balance")

    assert type(error) is kind
    assert error.code == (error_code or no_money)


@pytest.mark.parametrize(
    ("path", "right"),
    [
        ("/api/trade/balance", "Accountant"),
        ("/api/user/add", "Modify accounts"),
        ("/api/deal/get_batch", "Access to trade orders"),
        ("/api/user/get_batch", "Access to accounts"),
    ],
)
def test_missing_permission_names_the_right_the_endpoint_needs(path, right):
    error = retcode_error(8, "Not enough permissions", path=path)

    assert error.code == "missing_permission"
    assert right in str(error)


def test_every_string_value_parses_to_decimal_int_or_utc():
    assert parse_money("26000.00") == Decimal("26000.00")
    assert parse_money("-200.1") == Decimal("-200.10")
    assert parse_decimal("1.11850") == Decimal("1.11850")
    assert parse_int("764636") == 764636
    assert parse_int("") == 0
    # A server three hours ahead writes 15:00 for 12:00 UTC.
    noon = datetime(2030, 1, 2, 12, tzinfo=UTC)
    stamp = str(int(noon.timestamp()) + 3 * 3600)
    assert parse_server_time(stamp, offset_seconds=10800) == noon
    with pytest.raises(ValueError):
        parse_decimal("NaN")


def test_values_are_escaped_as_mt5_reads_them_and_url_encoded():
    query = query_string({"group": "demo\\forex", "comment": "a b|c=d", "login": [1, 2]})

    assert query == "group=demo%5Cforex&comment=a%20b%5C%7Cc%5C%3Dd&login=1,2"


def test_group_masks_include_with_a_star_and_exclude_with_a_bang():
    assert mask_matches("*", "real\\vip")
    assert mask_matches("real\\*,!real\\test", "real\\vip")
    assert not mask_matches("real\\*,!real\\test", "real\\test")
    assert not mask_matches("real\\*", "demo\\standard")


def test_plain_http_is_refused_to_anything_but_a_loopback_stand_in():
    with pytest.raises(PermanentGatewayError) as caught:
        WebApiClient(url="http://mt5.broker.example:443", login=1, password="x", timeout=5)
    assert caught.value.code == "not_configured"

    WebApiClient(url="http://127.0.0.1:8443", login=1, password="x", timeout=5)
    WebApiClient(url="https://mt5.broker.example:443", login=1, password="x", timeout=5)


# --- The gateway's batching, with a recording client --------------------------------------


class RecordingClient:
    """Answers canned JSON per path and records every call (path, params)."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def call(self, path, params=None, *, body=None, no_money="insufficient_balance"):
        self.calls.append((path, dict(params or {})))
        answer = self.answers[path]
        return answer(params or {}) if callable(answer) else answer

    def session_offset(self):
        return 0


def _account_state(login, balance, credit, equity, leverage):
    return {
        "Login": str(login),
        "Balance": balance,
        "Credit": credit,
        "Equity": equity,
        "MarginLeverage": str(leverage),
    }


def test_states_of_idle_accounts_fall_back_to_user_get_batch_in_the_same_batch():
    client = RecordingClient(
        {
            "/api/user/account/get_batch": {
                "retcode": "0 Done",
                "answer": [_account_state(101, "1000.00", "50.00", "990.25", 200)],
            },
            "/api/user/get_batch": {
                "retcode": "0 Done",
                "answer": [
                    {"Login": "102", "Balance": "300.00", "Credit": "20.00", "Leverage": "100"}
                ],
            },
        }
    )
    gateway = WebApiMT5Gateway(client=client, batch_size=1000)

    states = gateway.get_states([101, 102, 103])

    assert states == {
        101: AccountState(Decimal("1000.00"), Decimal("50.00"), Decimal("990.25"), 200),
        102: AccountState(Decimal("300.00"), Decimal("20.00"), Decimal("320.00"), 100),
    }
    assert [path for path, _ in client.calls] == [
        "/api/user/account/get_batch",
        "/api/user/get_batch",
    ]
    assert client.calls[1][1] == {"login": [102, 103]}  # only the ones left out


def test_a_quiet_sweep_costs_one_call_per_batch_not_per_account():
    def states(params):
        return {
            "retcode": "0 Done",
            "answer": [_account_state(x, "10.00", "0.00", "10.00", 100) for x in params["login"]],
        }

    client = RecordingClient({"/api/user/account/get_batch": states})
    gateway = WebApiMT5Gateway(client=client, batch_size=400)

    assert len(gateway.get_states(range(1, 1001))) == 1000
    assert [len(params["login"]) for _, params in client.calls] == [400, 400, 200]


def test_deals_are_read_from_the_cursor_deals_time_minus_the_overlap_and_deduped():
    cursor_time = 1_900_000_000
    deal = {
        "Deal": "51",
        "Login": "101",
        "Action": "2",
        "Entry": "0",
        "Time": str(cursor_time + 60),
        "Profit": "25.00",
        "Comment": "dep",
        "Volume": "0",
        "Price": "0",
        "PositionID": "0",
    }
    older = dict(deal, Deal="50", Time=str(cursor_time))
    client = RecordingClient(
        {
            "/api/deal/get_batch": lambda params: (
                {"retcode": "0 Done", "answer": [older]}
                if "ticket" in params
                else {"retcode": "0 Done", "answer": [older, deal, deal]}
            )
        }
    )
    gateway = WebApiMT5Gateway(client=client, batch_size=1000)

    deals = gateway.get_deals(cursors={101: 50})

    assert [(d.ticket, d.action, d.entry, d.profit) for d in deals] == [
        (51, DealAction.BALANCE, DealEntry.NONE, Decimal("25.00"))
    ]
    lookup, window = client.calls
    assert lookup[1] == {"ticket": [50]}
    assert window[1]["from"] == cursor_time - int(DEAL_WINDOW_OVERLAP.total_seconds())
    # The next sweep knows the cursor deal's time: one call, no lookup.
    gateway.get_deals(cursors={101: 51})
    assert [params.keys() for _, params in client.calls[2:]] == [{"login", "from", "to"}]


# --- Against the stand-in over real HTTP ---------------------------------------------------


def _gateway(url, **kwargs) -> WebApiMT5Gateway:
    return WebApiMT5Gateway(url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD, **kwargs)


def _drop_connections(standin):
    for handler in list(standin._open):
        handler.hang_up()


def _forget_sessions(standin):
    for handler in list(standin._open):
        handler.session.forget()


@pytest.fixture
def standin(transactional_db):
    with running_standin(groups=("demo\\standard", "real\\standard")) as (url, server):
        yield url, server


@pytest.fixture
def market(transactional_db):
    return SimulatedMT5Gateway()


def test_many_calls_share_one_authenticated_connection(standin, market):
    url, server = standin
    login = market.add_account(balance=100)
    gateway = _gateway(url)

    for _ in range(5):
        gateway.get_states([login])
    gateway.post_balance(login, Decimal("10"), comment="op-one-conn")

    assert gateway.client.stats.logins == 1
    assert len(server._open) == 1
    assert gateway.get_accounts([login])[login].balance == Decimal("110.00")


def test_a_wrong_manager_password_is_a_permanent_auth_failure(standin):
    url, _server = standin
    gateway = WebApiMT5Gateway(url=url, login=MANAGER_LOGIN, password="Wrong-pass1")

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.ping()

    assert caught.value.code == "auth_failed"


def test_a_read_after_a_dropped_connection_is_answered_on_a_fresh_session(standin, market):
    url, server = standin
    login = market.add_account(balance=100)
    gateway = _gateway(url)
    gateway.get_states([login])

    _drop_connections(server)

    assert gateway.get_states([login])[login].balance == Decimal("100.00")
    assert gateway.client.stats.logins == 2


def test_a_read_refused_with_403_after_the_session_expired_reauthenticates(standin, market):
    url, server = standin
    login = market.add_account(balance=100)
    gateway = _gateway(url)
    gateway.ping()

    _forget_sessions(server)

    assert gateway.get_accounts([login])[login].balance == Decimal("100.00")
    assert gateway.client.stats.logins == 2


def test_a_write_refused_with_403_did_nothing_and_the_next_attempt_works(standin, market):
    url, server = standin
    login = market.add_account(balance=100)
    gateway = _gateway(url)
    gateway.ping()
    _forget_sessions(server)

    with pytest.raises(TransientGatewayError) as caught:
        gateway.post_balance(login, Decimal("10"), comment="op-403")

    assert not isinstance(caught.value, UnknownOutcomeError)
    assert caught.value.code == "session_expired"
    assert SimulatedMT5Account.objects.get(pk=login).balance == Decimal("100.00")
    gateway.post_balance(login, Decimal("10"), comment="op-403")
    assert SimulatedMT5Deal.objects.filter(comment="op-403").count() == 1


def test_a_lost_balance_answer_is_unknown_and_resolved_by_the_deals_comment(standin, market):
    url, _server = standin
    login = market.add_account(balance=100)
    gateway = _gateway(url)
    gateway.ping()
    knobs = SimulatorKnobs.objects.create(server="mt5_webapi", drop_rate=1)

    with pytest.raises(UnknownOutcomeError):
        gateway.post_credit(login, Decimal("25"), comment="op-lost-answer")

    knobs.delete()
    found = gateway.find_deal_by_comment(login, "op-lost-answer")
    assert (found.action, found.profit) == (DealAction.CREDIT, Decimal("25.00"))
    assert SimulatedMT5Deal.objects.filter(comment="op-lost-answer").count() == 1  # never resent
    assert gateway.get_accounts([login])[login].credit == Decimal("25.00")


def test_retcode_8_on_a_balance_names_the_accountant_right(standin, market):
    url, _server = standin
    login = market.add_account(balance=100)
    gateway = _gateway(url)
    gateway.ping()  # connected before the manager loses the right
    SimulatorKnobs.objects.create(server="mt5_webapi", error_rate=1, fault_retcode=8)

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.post_balance(login, Decimal("10"), comment="op-perm")

    assert caught.value.code == "missing_permission"
    assert "Accountant" in str(caught.value)


def test_an_idle_session_is_pinged_before_use_and_not_more_often(standin, market):
    url, _server = standin
    login = market.add_account(balance=100)
    now = [1000.0]
    client = WebApiClient(
        url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD, timeout=5, clock=lambda: now[0]
    )
    gateway = WebApiMT5Gateway(client=client)
    gateway.get_states([login])
    pings = client.stats.by_path.get("/api/test/access", 0)

    now[0] += 19
    gateway.get_states([login])
    assert client.stats.by_path.get("/api/test/access", 0) == pings

    now[0] += 21
    gateway.get_states([login])
    assert client.stats.by_path.get("/api/test/access", 0) == pings + 1
    assert client.stats.logins == 1


def test_a_server_three_hours_ahead_gives_deal_times_in_utc(transactional_db, time_machine):
    noon = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)
    time_machine.move_to(noon, tick=False)
    market = SimulatedMT5Gateway()
    login = market.add_account(balance=100)
    with running_standin(time_offset_seconds=3 * 3600) as (url, _server):
        gateway = _gateway(url)
        ticket = gateway.post_balance(login, Decimal("40"), comment="op-tz")

        deals = gateway.get_deals(cursors={login: 0}, since=noon - timedelta(minutes=1))

        assert gateway.client.time_offset_seconds == 10800
        assert [(d.comment, d.time) for d in deals] == [("Deposit", noon), ("op-tz", noon)]
        assert deals[-1].ticket == ticket
        assert gateway.get_deals(cursors={login: 0}, since=noon + timedelta(seconds=1)) == []
        assert gateway.find_deal_by_comment(login, "op-tz").time == noon
        assert gateway.get_accounts([login])[login].registered_at == noon


def test_a_configured_offset_is_used_instead_of_measuring(transactional_db, time_machine):
    noon = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)
    time_machine.move_to(noon, tick=False)
    login = SimulatedMT5Gateway().add_account(balance=100)
    with running_standin(time_offset_seconds=3600) as (url, _server):
        gateway = _gateway(url, time_offset_seconds=3600)

        ticket = gateway.post_balance(login, Decimal("1"), comment="op-cfg")

        assert gateway.get_deals(cursors={login: ticket - 1})[0].time == noon
        assert "/api/time/server" not in gateway.client.stats.by_path


def test_tls_with_the_private_ca_bundle_or_the_pinned_certificate(transactional_db):
    with running_standin(tls=True) as (url, server):
        trusted = WebApiClient(
            url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD, timeout=5,
            ca_bundle=server.cafile,
        )  # fmt: skip
        trusted.ping()

        der = ssl.PEM_cert_to_DER_cert(server.certificate_pem.decode())
        pinned = WebApiClient(
            url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD, timeout=5,
            cert_sha256=hashlib.sha256(der).hexdigest().upper(),
        )  # fmt: skip
        pinned.ping()

        wrong = WebApiClient(
            url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD, timeout=5,
            cert_sha256="00" * 32,
        )  # fmt: skip
        with pytest.raises(PermanentGatewayError) as mismatch:
            wrong.ping()
        assert mismatch.value.code == "certificate_mismatch"

        default = WebApiClient(url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD, timeout=5)
        with pytest.raises(PermanentGatewayError) as untrusted:
            default.ping()
        assert untrusted.value.code == "certificate_untrusted"


def test_close_positions_goes_through_dealer_requests_and_their_results(standin, market):
    url, _server = standin
    login = market.add_account(balance=1000)
    market.open_position(login, symbol="EURUSD", side="buy", volume="0.5", profit="12.50")
    market.open_position(login, symbol="GBPUSD", side="sell", volume="1", profit="-2.50")
    gateway = _gateway(url)

    tickets = gateway.close_positions(login, comment="op-close")

    closing = SimulatedMT5Deal.objects.filter(account_id=login, entry=DealEntry.OUT)
    assert sorted(tickets) == sorted(closing.values_list("ticket", flat=True))
    assert list(closing.order_by("ticket").values_list("action", "volume")) == [
        (DealAction.SELL, Decimal("0.50")),
        (DealAction.BUY, Decimal("1.00")),
    ]
    assert gateway.get_positions([login]) == []
    assert gateway.client.stats.by_path["/api/dealer/send_request"] == 2


def test_a_balance_answer_later_than_the_timeout_is_unknown_and_found_once(standin, market):
    url, _server = standin
    login = market.add_account(balance=100)
    client = WebApiClient(url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD, timeout=0.5)
    gateway = WebApiMT5Gateway(client=client)
    gateway.ping()
    knobs = SimulatorKnobs.objects.create(server="mt5_webapi", latency_ms=1500)

    with pytest.raises(UnknownOutcomeError):
        gateway.post_balance(login, Decimal("-30"), comment="op-slow")

    knobs.delete()
    assert gateway.find_deal_by_comment(login, "op-slow").profit == Decimal("-30.00")
    assert SimulatedMT5Deal.objects.filter(comment="op-slow").count() == 1
    assert gateway.get_states([login])[login].balance == Decimal("70.00")


def test_an_answer_with_a_value_that_is_no_number_is_a_bad_response_not_a_crash():
    client = RecordingClient(
        {
            "/api/user/account/get_batch": {
                "retcode": "0 Done",
                "answer": [_account_state(101, "lots", "0.00", "10.00", 100)],
            },
            "/api/trade/balance": {"retcode": "0 Done", "answer": {"Ticket": "12x"}},
        }
    )
    gateway = WebApiMT5Gateway(client=client)

    with pytest.raises(PermanentGatewayError) as read:
        gateway.get_states([101])
    with pytest.raises(UnknownOutcomeError) as write:
        gateway.post_balance(101, Decimal("5"), comment="op-bad")

    assert (read.value.code, write.value.code) == ("bad_response", "bad_response")


def test_the_settings_select_the_web_api_gateway_its_group_mask_and_batch_size(
    standin, market, settings
):
    url, _server = standin
    real = [market.add_account(group="real\\standard") for _ in range(3)]
    market.add_account(group="demo\\standard")
    settings.MT5_GATEWAY = "gateways.mt5.webapi.gateway.WebApiMT5Gateway"
    settings.MT5_WEBAPI_URL = url
    settings.MT5_MANAGER_LOGIN = str(MANAGER_LOGIN)
    settings.MT5_MANAGER_PASSWORD = MANAGER_PASSWORD
    settings.MT5_WEBAPI_GROUP_MASK = "real\\*"
    settings.MT5_WEBAPI_BATCH_SIZE = 2
    reset_gateways()
    try:
        gateway = get_mt5_gateway()

        assert isinstance(gateway, WebApiMT5Gateway)
        assert gateway.list_logins() == sorted(real)
        assert gateway.list_groups() == ["real\\standard"]
        before = gateway.client.stats.by_path.get("/api/user/account/get_batch", 0)
        assert len(gateway.get_states(real)) == 3
        assert gateway.client.stats.by_path["/api/user/account/get_batch"] == before + 2
    finally:
        reset_gateways()


def test_a_call_that_cannot_get_the_session_within_its_timeout_sends_nothing(standin, market):
    """One connection is one session: a caller waits its turn for at most one timeout, then
    gives up before anything leaves, so a write never goes out long after it was decided."""
    import threading

    url, _server = standin
    login = market.add_account(balance=100)
    client = WebApiClient(url=url, login=MANAGER_LOGIN, password=MANAGER_PASSWORD, timeout=0.2)
    gateway = WebApiMT5Gateway(client=client)
    gateway.get_states([login])
    calls = client.stats.calls
    outcome = []

    def write():
        try:
            gateway.post_balance(login, Decimal("10"), comment="op-busy")
        except Exception as exc:
            outcome.append(exc)

    client._lock.acquire()  # another thread's call holds the session
    try:
        worker = threading.Thread(target=write)
        worker.start()
        worker.join(timeout=30)
    finally:
        client._lock.release()

    [error] = outcome
    assert isinstance(error, TransientGatewayError) and error.code == "session_busy"
    assert client.stats.calls == calls
    assert market.get_accounts([login])[login].balance == Decimal("100.00")
