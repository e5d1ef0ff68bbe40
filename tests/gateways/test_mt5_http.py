"""What only the HTTP client does: sessions, retries, timeouts, unknown outcomes, secrecy."""

import logging
import threading
from decimal import Decimal

import pytest

from gateways import http as transport
from gateways.errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError
from tests.gateways.mt5_bridge import MANAGER_PASSWORD, running_bridge


@pytest.fixture
def bridge(settings):
    """(bridge, standin, gateway) with retries on and no backoff delay."""
    settings.GATEWAY_MAX_RETRIES = 2
    with running_bridge(settings) as running:
        yield running


def _calls(standin, path):
    return [seen for seen in standin.requests if seen[1] == path]


def test_the_session_is_opened_lazily_and_reused(bridge):
    fake, standin, gateway = bridge
    assert standin.requests == []

    gateway.ping()
    gateway.list_logins()

    assert fake.connects == 1
    assert standin.requests == [("POST", "/connect"), ("GET", "/ping"), ("GET", "/logins")]


def test_an_expired_token_is_renewed_once_and_the_call_succeeds(bridge):
    fake, standin, gateway = bridge
    login = fake.add_account(balance=100)
    gateway.ping()
    fake.expire_tokens()

    accounts = gateway.get_accounts([login])

    assert accounts[login].balance == Decimal("100.00")
    assert fake.connects == 2
    assert standin.requests[-3:] == [
        ("POST", "/accounts/query"),
        ("POST", "/connect"),
        ("POST", "/accounts/query"),
    ]


def test_a_write_refused_for_an_expired_token_is_sent_again_after_reconnecting(bridge):
    fake, standin, gateway = bridge
    login = fake.add_account()
    gateway.ping()
    fake.expire_tokens()

    ticket = gateway.post_balance(login, Decimal("10"), comment="op-1")

    assert gateway.find_deal_by_comment(login, "op-1").ticket == ticket
    assert len(_calls(standin, f"/accounts/{login}/balance")) == 2
    assert [d["comment"] for d in fake.deals] == ["op-1"]


def test_a_second_401_after_reconnecting_is_permanent(bridge):
    fake, standin, gateway = bridge
    fake.accept_tokens = False

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.list_logins()

    assert caught.value.code == "unauthorized"
    assert fake.connects == 2
    assert len(_calls(standin, "/logins")) == 2


def test_wrong_manager_credentials_are_permanent_and_not_retried(bridge, settings):
    _fake, standin, gateway = bridge
    settings.MT5_MANAGER_PASSWORD = "wrong-password"

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.ping()

    assert caught.value.code == "bad_credentials"
    assert standin.requests == [("POST", "/connect")]


def test_a_permanent_error_is_sent_exactly_once(bridge):
    fake, standin, gateway = bridge
    fake.answer_next("/accounts/query", 400, {"code": "bad_request", "detail": "no"})

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.get_accounts([10001])

    assert caught.value.code == "bad_request"
    assert len(_calls(standin, "/accounts/query")) == 1


def test_an_unknown_login_on_a_write_is_sent_exactly_once(bridge):
    _fake, standin, gateway = bridge

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.post_credit(999_999, Decimal("10"), comment="op-1")

    assert caught.value.code == "account_not_found"
    assert len(_calls(standin, "/accounts/999999/credit")) == 1


def test_a_transient_503_on_a_read_is_retried_then_succeeds(bridge):
    fake, standin, gateway = bridge
    fake.add_account()
    fake.answer_next("/logins", 503)

    assert len(gateway.list_logins()) == 1
    assert len(_calls(standin, "/logins")) == 2


def test_a_read_that_keeps_failing_gives_up_after_the_configured_retries(bridge):
    fake, standin, gateway = bridge
    fake.answer_next("/groups", 503, times=5)

    with pytest.raises(TransientGatewayError):
        gateway.list_groups()

    assert len(_calls(standin, "/groups")) == 3  # GATEWAY_MAX_RETRIES = 2


def test_a_write_answered_503_is_transient_and_sent_once(bridge):
    fake, standin, gateway = bridge
    login = fake.add_account()
    fake.answer_next(f"/accounts/{login}/balance", 503)

    with pytest.raises(TransientGatewayError) as caught:
        gateway.post_balance(login, Decimal("10"), comment="op-1")

    assert not isinstance(caught.value, UnknownOutcomeError)
    assert len(_calls(standin, f"/accounts/{login}/balance")) == 1


def test_a_write_answered_502_has_an_unknown_outcome(bridge):
    fake, standin, gateway = bridge
    login = fake.add_account()
    fake.answer_next(f"/accounts/{login}/credit", 502)

    with pytest.raises(UnknownOutcomeError):
        gateway.post_credit(login, Decimal("10"), comment="op-1")

    assert len(_calls(standin, f"/accounts/{login}/credit")) == 1


def test_a_write_that_times_out_has_an_unknown_outcome_and_is_sent_once(bridge, settings):
    fake, standin, gateway = bridge
    login = fake.add_account()
    gateway.ping()
    settings.MT5_REQUEST_TIMEOUT_SECONDS = 0.2
    fake.slow[f"/accounts/{login}/balance"] = 1.0

    with pytest.raises(UnknownOutcomeError):
        gateway.post_balance(login, Decimal("75"), comment="op-9")

    assert len(_calls(standin, f"/accounts/{login}/balance")) == 1
    # The bridge did it; the unknown-outcome check is how the caller finds out.
    assert gateway.find_deal_by_comment(login, "op-9").profit == Decimal("75.00")


def test_a_malformed_answer_to_a_read_is_a_permanent_bad_response(bridge):
    fake, _standin, gateway = bridge
    fake.answer_next("/accounts/query", 200, {"accounts": [{"login": 1}]})

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.get_accounts([1])

    assert caught.value.code == "bad_response"


def test_a_malformed_answer_to_a_write_has_an_unknown_outcome(bridge):
    fake, _standin, gateway = bridge
    fake.answer_next("/accounts/1/credit", 200, {"nothing": True})

    with pytest.raises(UnknownOutcomeError):
        gateway.post_credit(1, Decimal("10"), comment="op-1")


def test_every_call_passes_the_configured_timeout(bridge, settings, monkeypatch):
    fake, _standin, gateway = bridge
    settings.MT5_REQUEST_TIMEOUT_SECONDS = 7.5
    login = fake.add_account(balance=100)
    seen = []
    real_request = transport.request

    def spy(method, url, **kwargs):
        seen.append((method, url, kwargs["timeout"], kwargs["idempotent"]))
        return real_request(method, url, **kwargs)

    monkeypatch.setattr(transport, "request", spy)

    gateway.get_accounts([login])
    gateway.get_deals(cursors={login: 0})
    gateway.post_credit(login, Decimal("5"), comment="op-1")
    gateway.set_leverage(login, 200)
    gateway.close_positions(login, comment="op-2")

    assert {timeout for _m, _u, timeout, _i in seen} == {7.5}
    assert [(url.rsplit("/", 1)[-1], idem) for _m, url, _t, idem in seen] == [
        ("connect", True),
        ("query", True),
        ("query", True),
        ("credit", False),
        ("leverage", False),
        ("close-positions", False),
    ]


def test_concurrent_calls_on_a_fresh_client_open_one_session(bridge):
    fake, _standin, gateway = bridge
    start = threading.Barrier(8)
    errors = []

    def call():
        start.wait()
        try:
            gateway.list_logins()
        except Exception as exc:  # collected so the assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert fake.connects == 1


def test_neither_the_manager_password_nor_the_token_reaches_logs_or_errors(bridge, caplog):
    fake, _standin, gateway = bridge
    caplog.set_level(logging.DEBUG)
    gateway.ping()
    token = next(iter(fake.tokens))
    fake.answer_next("/logins", 503, times=5)

    with pytest.raises(TransientGatewayError) as caught:
        gateway.list_logins()

    text = caplog.text + str(caught.value)
    assert "retrying" in caplog.text
    assert MANAGER_PASSWORD not in text
    assert token not in text


def test_an_unset_bridge_url_is_a_permanent_configuration_error(settings):
    from gateways.mt5.http import HttpMT5Gateway

    settings.MT5_BRIDGE_URL = ""

    with pytest.raises(PermanentGatewayError) as caught:
        HttpMT5Gateway().ping()

    assert caught.value.code == "not_configured"
