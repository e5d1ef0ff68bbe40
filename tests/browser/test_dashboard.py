"""The staff dashboard in a real browser, with real figures made through the services: a
campaign, bonuses granted and converted, a monitor sweep, press passes from the pool, licenses
and their API calls, a running trading session and its trade. Its screenshot is the proof."""

from decimal import Decimal

import requests
from selenium.webdriver.common.by import By

from accounts.roles import Role
from accounts.services import monitor_register
from accounts.services.monitor import monitor_sweep
from bonuses.services import bonus_assign, bonus_force_convert
from demo_pool.services import press_pass_activate, provisioning_enqueue, provisioning_process
from gateways.models import SimulatedMT5Deal
from licensing.services import license_create, usage_flush
from operations.dashboard import dashboard_tiles
from trading_sessions.models import SignalChannel, Trade
from trading_sessions.services import (
    broker_account_create,
    channel_subscribe,
    session_create,
    session_start,
    signal_receive,
)

from .product import campaign_live, mt5_account, plans_seed

CHARTS = ("bonuses_per_day", "pool_availability", "api_calls", "trades_per_day")


def the_product_at_work(live_server, staff):
    """A day of the product, through its services (and its API for the license calls)."""
    # Campaigns and bonuses: two live campaigns; a Type B bonus and a Type C bonus converted.
    fixed = campaign_live(actor=staff, name="Spring deposit 50%")
    convertible = campaign_live(
        actor=staff, name="Convertible 20%", bonus_type="C", percentage=Decimal("20"),
        convert_per_lot=Decimal("10.00"),
    )  # fmt: skip
    first, second = mt5_account(), mt5_account(balance="2500.00")
    deal_of = {  # each account's opening deposit: a manual grant stands on a real deal
        deal.account_id: deal.ticket
        for deal in SimulatedMT5Deal.objects.filter(
            account_id__in=[first, second], action="balance"
        )
    }
    bonus_assign(login=first, campaign=fixed, deal_id=deal_of[first], actor=staff)
    converted = bonus_assign(
        login=second, campaign=convertible, deal_id=deal_of[second], actor=staff
    )
    bonus_force_convert(bonus=converted, actor=staff)

    # The monitor watches both accounts and has swept them.
    for login in (first, second):
        monitor_register(login=login, actor=staff)
    monitor_sweep(dispatch=False)

    # The demo pool: three accounts provisioned, two press passes served at once.
    provisioning_enqueue(count=3)
    provisioning_process(limit=10)
    for n in (1, 2):
        press_pass_activate(user_id=f"trial-{n}", real_name=f"Trial {n}", delivery_method="api")

    # Licensing: one license expiring in 3 days, one in a month; five validations by the API.
    license_create(account_id="ACC-TRIAL", license_type="TRIAL", duration_days=3)
    _, key = license_create(account_id="ACC-MONTHLY", license_type="MONTHLY")
    for _ in range(5):
        answer = requests.post(
            f"{live_server.url}/api/v1/licenses/validate/", json={"license_key": key}, timeout=30
        )
        assert answer.status_code == 200, answer.text
    usage_flush()

    # Trading: a client's session running on a demo broker account takes one signal.
    plans_seed()
    channel = SignalChannel.objects.create(code="vip", name="VIP signals")
    from tests.factories import UserFactory

    client = UserFactory()
    account = broker_account_create(
        user=client, account_name="Demo", email="trader@broker.test", password="Broker-pass-1",
        account_type="demo",
    )  # fmt: skip
    channel_subscribe(user=client, channel_code=channel.code)
    session = session_create(
        user=client, account_id=account.pk, session_name="EURUSD", trade_amount=Decimal("5.00"),
        gale_limit=2, stop_profit=Decimal("100.00"), stop_loss=Decimal("50.00"),
    )  # fmt: skip
    session_start(session=session)
    signal_receive(channel=channel, asset="EURUSD", direction="call", duration=60)
    assert Trade.objects.count() == 1


def tile_text(browser, key: str) -> str:
    return browser.find_element(By.ID, f"tile-{key}").text


def test_the_dashboard_shows_the_running_products_figures_and_draws_its_charts(
    make_user, admin_login, wait_for, screenshot, live_server
):
    staff = make_user(role=Role.SUPER_ADMIN)
    the_product_at_work(live_server, staff)
    expected = {tile.key: tile for tile in dashboard_tiles(user=staff)}

    browser = admin_login(staff)
    wait_for("#staff-dashboard")

    # Every figure the page shows is the one the product holds.
    for key, tile in expected.items():
        if key == "monitor_last_sweep":
            continue  # "N s ago" moves on while the test runs
        shown = browser.find_element(By.CSS_SELECTOR, f"#tile-{key} .bd-value").text
        assert shown == tile.value, key
    assert expected["campaigns_active"].figures == {"active": 2, "live": 2}
    assert expected["bonuses_active"].figures == {
        "active": 1,
        "credit_outstanding": Decimal("500.00"),
    }
    assert expected["conversions_week"].figures["conversions"] == 1
    assert expected["conversions_week"].figures["amount"] == Decimal("500.00")
    assert expected["bonuses_per_day"].figures["total"] == 2
    assert expected["monitor_paused"].figures == {"paused": 0, "total": 2}
    assert expected["monitor_last_sweep"].figures["at"] is not None
    assert "ago" in tile_text(browser, "monitor_last_sweep")
    assert expected["pool_availability"].figures["activations"] == 2
    assert tile_text(browser, "pool_availability").startswith("Demo pool availability")
    assert expected["pool_availability"].value == "100.0%"
    assert expected["delivery_success"].figures["delivered"] == 2
    assert expected["licenses_expiring"].figures == {"total": 2, "expiring": 1}
    assert expected["api_calls"].figures["today"] == 5
    assert expected["sessions_active"].figures == {"total": 1, "active": 1}
    assert expected["trades_per_day"].figures["today"] == 1

    # The charts are inline SVG drawn by the server, with today's bar and the pool's dot.
    for key in CHARTS:
        charts = browser.find_elements(By.CSS_SELECTOR, f"#tile-{key} svg.bd-chart")
        assert len(charts) == 1, key
        assert charts[0].size["width"] > 200 and charts[0].size["height"] > 50, key
    for key in ("bonuses_per_day", "api_calls", "trades_per_day"):
        bars = browser.find_elements(By.CSS_SELECTOR, f"#tile-{key} svg rect.bd-bar")
        assert [bar.get_attribute("data-value") for bar in bars] == [
            str(expected[key].figures["today"] if key != "bonuses_per_day" else 2)
        ], key
    dots = browser.find_elements(By.CSS_SELECTOR, "#tile-pool_availability svg circle.bd-dot")
    assert [dot.get_attribute("data-value") for dot in dots] == ["100"]
    assert browser.find_elements(By.CSS_SELECTOR, "script[src*='//']") == []  # no CDN

    path = screenshot("dashboard")
    browser.find_element(By.ID, "staff-dashboard").screenshot(
        str(path.with_name("dashboard-tiles.png"))
    )

    # A tile is a way in: its figure opens the filtered list behind it.
    browser.find_element(By.CSS_SELECTOR, "#tile-bonuses_active .bd-value a").click()
    wait_for("#result_list")
    assert "status__exact=active" in browser.current_url
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 1
    screenshot("dashboard-link-active-bonuses")
