"""broker-accounts/: a client's own broker logins; the password goes in and never comes out."""

import pytest

from licensing.services import subscription_create
from trading_sessions.models import BrokerAccount

pytestmark = pytest.mark.django_db

URL = "/api/v1/broker-accounts/"
PASSWORD = "Sekret-broker-pass-7731"
BODY = {
    "account_name": "Main demo",
    "email": "Jane@Broker.test",
    "password": PASSWORD,
    "account_type": "demo",
}
ANSWER_FIELDS = {
    "id",
    "account_name",
    "email",
    "account_type",
    "balance",
    "connection_status",
    "last_checked_at",
    "created_at",
}


@pytest.fixture
def client_user(make_user):
    return make_user()


@pytest.fixture
def client_api(client_user, as_user):
    return as_user(client_user)


@pytest.fixture
def premium(client_user):
    subscription_create(user=client_user, plan_code="premium")
    return client_user


def test_adding_an_account_checks_it_at_the_broker_and_answers_its_balance(client_api):
    response = client_api.post(URL, BODY, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == ANSWER_FIELDS
    assert body["email"] == "jane@broker.test"
    assert body["account_type"] == "demo"
    assert body["balance"] == "10000.00"
    assert body["connection_status"] == "connected"
    assert body["last_checked_at"] is not None


def test_the_list_is_paginated_and_holds_the_callers_accounts(client_api):
    client_api.post(URL, BODY, format="json")

    body = client_api.get(URL).json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1
    assert body["results"][0]["account_name"] == "Main demo"
    assert set(body["results"][0]) == ANSWER_FIELDS


def test_the_password_is_stored_encrypted(client_api):
    client_api.post(URL, BODY, format="json")

    stored = BrokerAccount.objects.values_list("password", flat=True).get()

    assert PASSWORD not in stored
    assert str(BrokerAccount.objects.get().password) == PASSWORD


def test_the_password_appears_in_no_answer(client_api, premium):
    answers = [client_api.post(URL, BODY, format="json")]
    account_id = answers[0].json()["id"]
    detail = f"{URL}{account_id}/"
    answers += [
        client_api.get(URL),
        client_api.get(detail),
        client_api.patch(detail, {"password": PASSWORD + "-2"}, format="json"),
        client_api.put(detail, {**BODY, "account_name": "Renamed"}, format="json"),
        client_api.post(f"{detail}test/"),
        client_api.get(f"{detail}balance/"),
        # error answers: a bad field next to the password, a duplicate login
        client_api.post(URL, {**BODY, "email": "not-an-email"}, format="json"),
        client_api.post(URL, {**BODY, "account_type": "gold"}, format="json"),
        client_api.post(URL, BODY, format="json"),
        client_api.get(detail, HTTP_ACCEPT="text/html"),  # the browsable API's page and forms
    ]

    assert [a.status_code for a in answers] == [
        201,
        200,
        200,
        200,
        200,
        200,
        200,
        400,
        400,
        400,
        200,
    ]
    for answer in answers:
        assert PASSWORD.encode() not in answer.content
        assert b'"password"' not in answer.content
    assert b"enc:v1" not in answers[-1].content


def test_a_second_login_with_the_same_email_and_type_is_refused(client_api, premium):
    client_api.post(URL, BODY, format="json")

    response = client_api.post(URL, {**BODY, "email": "jane@broker.test"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_account"


def test_a_changed_password_is_checked_again_and_a_wrong_one_shows_as_failed(client_api):
    account_id = client_api.post(URL, BODY, format="json").json()["id"]

    changed = client_api.patch(
        f"{URL}{account_id}/", {"password": "not-the-broker-password"}, format="json"
    )
    tested = client_api.post(f"{URL}{account_id}/test/")

    assert changed.status_code == 200
    assert changed.json()["connection_status"] == "failed"
    assert tested.status_code == 200
    assert tested.json() == {
        "connected": False,
        "balance": "10000.00",
        "connection_status": "failed",
    }


def test_put_without_a_password_keeps_the_one_stored(client_api):
    account_id = client_api.post(URL, BODY, format="json").json()["id"]
    body = {k: v for k, v in BODY.items() if k != "password"}

    response = client_api.put(
        f"{URL}{account_id}/", {**body, "account_name": "Renamed"}, format="json"
    )
    tested = client_api.post(f"{URL}{account_id}/test/")

    assert response.status_code == 200
    assert response.json()["account_name"] == "Renamed"
    assert str(BrokerAccount.objects.get().password) == PASSWORD
    assert tested.json()["connected"] is True


def test_put_needs_every_field_but_the_password(client_api):
    account_id = client_api.post(URL, BODY, format="json").json()["id"]

    response = client_api.put(f"{URL}{account_id}/", {"account_name": "Renamed"}, format="json")

    assert response.status_code == 400
    assert set(response.json()) >= {"email", "account_type"}


def test_test_answers_connected_and_the_balance(client_api):
    account_id = client_api.post(URL, BODY, format="json").json()["id"]

    response = client_api.post(f"{URL}{account_id}/test/")

    assert response.status_code == 200
    assert response.json() == {
        "connected": True,
        "balance": "10000.00",
        "connection_status": "connected",
    }


def test_balance_answers_the_brokers_balance_now(client_api):
    account_id = client_api.post(URL, BODY, format="json").json()["id"]

    response = client_api.get(f"{URL}{account_id}/balance/")

    assert response.status_code == 200
    body = response.json()
    assert body["balance"] == "10000.00"
    assert body["fresh"] is True
    assert body["checked_at"] is not None


def test_an_account_with_no_sessions_is_deleted(client_api):
    account_id = client_api.post(URL, BODY, format="json").json()["id"]

    response = client_api.delete(f"{URL}{account_id}/")

    assert response.status_code == 204
    assert not BrokerAccount.objects.exists()
    assert client_api.get(f"{URL}{account_id}/").status_code == 404


def test_an_account_a_running_session_uses_is_not_deleted(client_user, client_api, make_session):
    session = make_session(client_user)

    response = client_api.delete(f"{URL}{session.account_id}/")

    assert response.status_code == 409
    assert response.json()["code"] == "account_in_use"
    assert BrokerAccount.objects.filter(pk=session.account_id).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "account_name"),
        ({**BODY, "email": "nope"}, "email"),
        ({**BODY, "account_type": "gold"}, "account_type"),
        ({**BODY, "password": ""}, "password"),
        ({**BODY, "account_name": "x" * 101}, "account_name"),
        ({**BODY, "password": 12345678901234567890 * 10**300}, "password"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client_api, body, field):
    response = client_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not BrokerAccount.objects.exists()


def test_a_body_that_is_no_object_is_a_400(client_api):
    assert client_api.post(URL, [1, 2], format="json").status_code == 400
    assert client_api.post(URL, "{not json", content_type="application/json").status_code == 400


def test_an_unknown_or_absurd_id_is_a_404_with_a_code(client_api):
    for account_id in ("999999", "99999999999999999999999999"):
        response = client_api.get(f"{URL}{account_id}/")
        assert response.status_code == 404
        assert response.json()["code"] == "account_not_found"


def test_anonymous_callers_are_refused(api):
    assert api.get(URL).status_code == 401
    assert api.post(URL, BODY, format="json").status_code == 401
