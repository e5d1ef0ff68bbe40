"""The plan's quotas through the API, one request after another and all at once.

A free user (no subscription) holds 1 broker account and 1 running session."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.concurrency import run_at_once
from trading_sessions.models import BrokerAccount, TradingSession

ACCOUNTS = "/api/v1/broker-accounts/"
THREADS = 10


def account_body(n: int) -> dict:
    return {
        "account_name": f"Account {n}",
        "email": f"free{n}@broker.test",
        "password": "Broker-pass-1",
        "account_type": "demo",
    }


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.mark.django_db
def test_a_free_users_second_broker_account_is_refused(make_user, as_user):
    client = as_user(make_user())

    first = client.post(ACCOUNTS, account_body(1), format="json")
    second = client.post(ACCOUNTS, account_body(2), format="json")

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["code"] == "quota_exceeded"
    assert (second.json()["limit"], second.json()["used"]) == (1, 1)
    assert BrokerAccount.objects.count() == 1


@pytest.mark.django_db
def test_a_free_users_second_session_start_is_refused(
    make_user, as_user, make_account, make_session
):
    user = make_user()
    account = make_account(user)
    first, second = (make_session(user, account=account, start=False) for _ in range(2))
    client = as_user(user)

    started = client.post(f"/api/v1/sessions/{first.pk}/start/")
    refused = client.post(f"/api/v1/sessions/{second.pk}/start/")
    client.post(f"/api/v1/sessions/{first.pk}/stop/")
    after_stop = client.post(f"/api/v1/sessions/{second.pk}/start/")

    assert started.status_code == 200
    assert (refused.status_code, refused.json()["code"]) == (409, "quota_exceeded")
    assert after_stop.status_code == 200
    assert list(TradingSession.objects.filter(is_active=True).values_list("pk", flat=True)) == [
        second.pk
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_account_requests_of_a_free_user_create_exactly_one(make_user):
    user = make_user()

    results, errors = run_at_once(
        lambda n: client_of(user).post(ACCOUNTS, account_body(n), format="json"), THREADS
    )

    assert errors == []
    assert sorted(r.status_code for r in results) == [201] + [409] * (THREADS - 1)
    assert BrokerAccount.objects.filter(user=user).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_starts_of_a_free_users_sessions_start_exactly_one(
    make_user, make_account, make_session
):
    user = make_user()
    account = make_account(user)
    sessions = [make_session(user, account=account, start=False) for _ in range(THREADS)]

    results, errors = run_at_once(
        lambda n: client_of(user).post(f"/api/v1/sessions/{sessions[n].pk}/start/"), THREADS
    )

    assert errors == []
    assert sorted(r.status_code for r in results) == [200] + [409] * (THREADS - 1)
    assert all(r.json()["code"] == "quota_exceeded" for r in results if r.status_code == 409)
    assert TradingSession.objects.filter(user=user, is_active=True).count() == 1
