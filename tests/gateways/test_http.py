"""The one function every outside HTTP call goes through."""

import pytest
import requests
import responses

from gateways import http
from gateways.errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError

URL = "http://outside.test/api/things"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(http.time, "sleep", lambda seconds: None)


def test_a_timeout_is_mandatory():
    with pytest.raises(ValueError, match="timeout"):
        http.request("GET", URL, timeout=None, gateway="t")
    with pytest.raises(ValueError, match="timeout"):
        http.request("GET", URL, timeout=0, gateway="t")


@responses.activate
def test_a_transient_status_is_retried_until_it_succeeds():
    responses.get(URL, status=503)
    responses.get(URL, status=200, json={"ok": True})
    response = http.request("GET", URL, timeout=1, gateway="t", retries=2)
    assert response.json() == {"ok": True}
    assert len(responses.calls) == 2


@responses.activate
def test_a_permanent_status_is_never_retried():
    responses.get(URL, status=400, json={"detail": "no such login", "code": "account_not_found"})
    with pytest.raises(PermanentGatewayError) as caught:
        http.request("GET", URL, timeout=1, gateway="t", retries=5)
    assert caught.value.code == "account_not_found"
    assert "no such login" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_retries_are_capped():
    responses.get(URL, status=502)
    with pytest.raises(TransientGatewayError):
        http.request("GET", URL, timeout=1, gateway="t", retries=2)
    assert len(responses.calls) == 3


@responses.activate
def test_a_write_that_times_out_has_an_unknown_outcome_and_is_not_resent():
    responses.post(URL, body=requests.ReadTimeout("slow"))
    with pytest.raises(UnknownOutcomeError):
        http.request("POST", URL, timeout=1, gateway="t", retries=3, json={"amount": "10.00"})
    assert len(responses.calls) == 1


@responses.activate
def test_an_idempotent_write_that_times_out_is_retried():
    responses.post(URL, body=requests.ReadTimeout("slow"))
    responses.post(URL, status=201, json={"id": 1})
    response = http.request("POST", URL, timeout=1, gateway="t", retries=1, idempotent=True)
    assert response.status_code == 201


@responses.activate
def test_errors_name_the_label_not_the_url_path():
    url = "http://telegram.test/bot123:SECRET/sendMessage"
    responses.post(url, status=403, json={"description": "bot was blocked"})
    with pytest.raises(PermanentGatewayError) as caught:
        http.request("POST", url, timeout=1, gateway="telegram", label="sendMessage")
    assert "SECRET" not in str(caught.value)
    assert "sendMessage" in str(caught.value)
