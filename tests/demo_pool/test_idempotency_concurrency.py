"""Activations with one Idempotency-Key at once (PostgreSQL: real threads, each with its own
connection, real requests through the whole stack)."""

import threading
import time
import uuid

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.roles import Role
from delivery.models import Delivery
from demo_pool.models import ActivationReplay, DemoAccount, PressPass
from demo_pool.services import replay
from tests.concurrency import run_at_once

from .conftest import FaultyDemoGateway

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ACTIVATE = "/api/v1/demo/press-pass/activate/"
BODY = {"user_id": "42", "real_name": "Jane Doe", "delivery_method": "api", "contact_info": ""}
CALLERS = 8


def test_retries_that_arrive_while_the_first_runs_wait_and_get_its_link(
    make_user, pool_config, fill, monkeypatch
):
    """The first activation is held inside its password change until the other seven are
    waiting for its answer; then all eight answer 201 with one link, one account."""
    pool_config(min_available=0, target_buffer=0)
    fill(CALLERS)
    token = str(RefreshToken.for_user(make_user(role=Role.SUPER_ADMIN)).access_token)
    key = str(uuid.uuid4())
    entered, release = threading.Event(), threading.Event()
    original = FaultyDemoGateway.change_password

    def held(self, login, password):
        entered.set()
        release.wait(timeout=30)
        return original(self, login, password)

    monkeypatch.setattr(FaultyDemoGateway, "change_password", held)
    waiters, pause = set(), replay._answer_wait

    def wait_for_the_answer():
        waiters.add(threading.get_ident())
        pause()

    monkeypatch.setattr(replay, "_answer_wait", wait_for_the_answer)

    def one(n):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.post(ACTIVATE, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)

    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(done=run_at_once(one, CALLERS)))
    runner.start()
    assert entered.wait(timeout=30)
    deadline = time.monotonic() + 30
    while len(waiters) < CALLERS - 1 and time.monotonic() < deadline:
        release.wait(timeout=0.02)  # polls the retries' state, not the clock
    waiting = len(waiters)
    assert PressPass.objects.count() == 1  # the first is still inside its password change
    release.set()
    runner.join(timeout=60)

    results, errors = outcome["done"]
    assert errors == []
    assert waiting == CALLERS - 1  # the retries waited for the first's answer while it ran
    assert [r.status_code for r in results] == [201] * CALLERS
    bodies = [r.json() for r in results]
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["delivery"]["link"]
    assert sum(1 for r in results if r.get("Idempotent-Replayed") == "true") == CALLERS - 1
    assert PressPass.objects.count() == 1 and Delivery.objects.count() == 1
    assert DemoAccount.objects.filter(status="assigned").count() == 1
    assert ActivationReplay.objects.count() == 1


def test_concurrent_activations_with_one_key_and_no_hold_give_one_assignment(
    make_user, pool_config, fill
):
    pool_config(min_available=0, target_buffer=0)
    fill(CALLERS)
    token = str(RefreshToken.for_user(make_user(role=Role.SUPER_ADMIN)).access_token)
    key = str(uuid.uuid4())

    def one(n):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.post(ACTIVATE, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)

    results, errors = run_at_once(one, CALLERS)

    assert errors == []
    assert [r.status_code for r in results] == [201] * CALLERS
    assert len({r.json()["delivery"]["link"] for r in results}) == 1
    assert PressPass.objects.count() == 1
    assert DemoAccount.objects.filter(status="available").count() == CALLERS - 1
