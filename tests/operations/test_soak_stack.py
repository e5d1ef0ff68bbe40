"""`make soak SOAK_MT5=webapi`: the stack starts the Web API stand-in as one more process and
points the product at it, and the soak turns the stand-in's own fault knobs on and back."""

import os
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from gateways.models import SimulatorKnobs
from gateways.mt5.simulated import SimulatedMT5Gateway
from gateways.mt5.webapi.gateway import WebApiMT5Gateway
from operations.soak import stack
from operations.soak.world import Person, World, knobs_restore, knobs_turn_on


@pytest.fixture(autouse=True)
def _frozen_time():
    """Real time here: the stand-in runs in its own process, on the real clock."""
    yield


def _database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{db.get('USER') or 'postgres'}{password}@{host}:{port}/{db['NAME']}"


def test_the_webapi_environment_points_the_product_at_the_stand_in_and_keeps_a_given_manager():
    made = stack.webapi_environment(8123, {})
    given = stack.webapi_environment(8123, {"MT5_MANAGER_LOGIN": "7", "MT5_MANAGER_PASSWORD": "Pw"})

    assert made["MT5_GATEWAY"] == "gateways.mt5.webapi.gateway.WebApiMT5Gateway"
    assert made["MT5_WEBAPI_URL"] == "http://127.0.0.1:8123"
    assert made["MT5_MANAGER_LOGIN"] == "1000"
    assert len(made["MT5_MANAGER_PASSWORD"]) >= 16  # made for the run, not a known default
    assert (
        made["MT5_MANAGER_PASSWORD"] != stack.webapi_environment(8123, {})["MT5_MANAGER_PASSWORD"]
    )
    assert (given["MT5_MANAGER_LOGIN"], given["MT5_MANAGER_PASSWORD"]) == ("7", "Pw")
    assert stack.webapi_command(8123)[-3:] == ["mt5_webapi_standin", "--port", "8123"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_stand_in_process_serves_the_simulated_servers_accounts_to_the_web_api_client(
    tmp_path,
):
    login = SimulatedMT5Gateway().add_account(balance=Decimal("123.45"), credit=Decimal("10"))
    port = stack.free_port()
    webapi = stack.webapi_environment(port, {})
    env = {**os.environ, **webapi, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1"}

    process = stack._start("mt5-webapi", stack.webapi_command(port), env, tmp_path)
    try:
        stack.wait_listening(port, [process])
        gateway = WebApiMT5Gateway(
            url=webapi["MT5_WEBAPI_URL"],
            login=webapi["MT5_MANAGER_LOGIN"],
            password=webapi["MT5_MANAGER_PASSWORD"],
            time_offset_seconds=0,
        )
        account = gateway.get_accounts([login])[login]
        gateway.client.close()
    finally:
        stack._stop([process])

    assert (account.balance, account.credit) == (Decimal("123.45"), Decimal("10.00"))
    log = (tmp_path / "mt5-webapi.log").read_text()
    assert f"on http://127.0.0.1:{port}" in log
    assert webapi["MT5_MANAGER_PASSWORD"] not in log


@pytest.mark.django_db
def test_the_soak_turns_the_web_api_stand_ins_403_and_drop_knobs_on_and_puts_them_back():
    SimulatorKnobs.objects.create(server="mt5_webapi", drop_rate=Decimal("0.5"), latency_ms=7)
    world = World(
        tag="t", started_at=timezone.now(), admin=Person("a@x.test", "pw"), integration_key="k"
    )

    knobs_turn_on(
        world,
        error_rate=Decimal("0.2"),
        latency_ms=50,
        forbidden_rate=Decimal("0.05"),
        drop_rate=Decimal("0.04"),
    )

    webapi = SimulatorKnobs.objects.get(server="mt5_webapi")
    assert (webapi.error_rate, webapi.latency_ms) == (Decimal("0.2"), 50)
    assert (webapi.forbidden_rate, webapi.drop_rate) == (Decimal("0.05"), Decimal("0.04"))
    mt5 = SimulatorKnobs.objects.get(server="mt5")
    assert (mt5.error_rate, mt5.forbidden_rate, mt5.drop_rate) == (Decimal("0.2"), 0, 0)

    knobs_restore(world)

    webapi.refresh_from_db()
    assert (webapi.error_rate, webapi.latency_ms) == (0, 7)
    assert (webapi.forbidden_rate, webapi.drop_rate) == (0, Decimal("0.5"))
    assert SimulatorKnobs.objects.get(server="mt5").error_rate == 0
