"""The staff dashboard on the admin index: right figures, per-role tiles, links to the lists
behind them, an empty install that renders, and a bounded number of queries."""

import logging
import re
from datetime import date
from decimal import Decimal
from html import unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from demo_pool.models import PoolConfig
from operations import dashboard
from operations.dashboard import TILES, changelist_url, dashboard_tiles, tile_keys_for

from .conftest import EXPECTED, LIST_ROWS, MONDAY, NOW

pytestmark = pytest.mark.django_db

ALL = [spec.key for spec in TILES]
# Bonuses, campaigns, the monitor and trading: what every staff role may view.
COMMON = {
    "campaigns_active",
    "bonuses_active",
    "conversions_week",
    "bonuses_per_day",
    "monitor_paused",
    "monitor_last_sweep",
    "sessions_active",
    "trades_per_day",
}
VISIBLE = {
    Role.SUPER_ADMIN: set(ALL),
    Role.CAMPAIGN_MANAGER: COMMON,
    Role.SUPPORT_AGENT: COMMON | {"delivery_success"},  # the pool status is not theirs
    Role.READ_ONLY: COMMON | {"pool_availability"},
}
# The admin's query budget for the whole index page as a Super Admin, dashboard included.
INDEX_QUERY_BUDGET = 30


def tiles_of(user) -> dict[str, dashboard.Tile]:
    return {tile.key: tile for tile in dashboard_tiles(user=user)}


def shown_tiles(response) -> list[str]:
    return re.findall(r'data-tile="([a-z_]+)"', response.content.decode())


def chart_links(tile) -> list[str]:
    return [unescape(href) for href in re.findall(r'<a href="([^"]+)"', str(tile.chart))]


def rows_listed(client: Client, url: str) -> int:
    """The rows the changelist at `url` shows (a lookup it refused would redirect to ?e=1)."""
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["cl"].result_count


@pytest.fixture
def super_admin(make_user):
    """(user, client signed in as that user)."""
    user = make_user(role=Role.SUPER_ADMIN)
    client = Client()
    client.force_login(user)
    return user, client


# --- Figures --------------------------------------------------------------------------------


def test_every_tile_counts_the_known_data_right(known_data, make_user):
    tiles = tiles_of(make_user(role=Role.SUPER_ADMIN))

    assert list(tiles) == ALL
    for key, figures in EXPECTED.items():
        assert tiles[key].figures == figures, key
    assert tiles["campaigns_active"].value == "2"
    assert tiles["campaigns_active"].detail == "1 granting now, 1 outside their dates"
    assert tiles["bonuses_active"].detail == "Credit outstanding 150.50"
    assert tiles["conversions_week"].value == "2"

    granted = tiles["bonuses_per_day"]
    assert granted.figures["total"] == 3
    assert granted.figures["amount"] == Decimal("180.50")
    assert granted.figures["per_day"] == {
        date(2026, 3, 11): 1,
        date(2026, 3, 9): 1,
        date(2026, 3, 1): 1,
    }
    assert granted.detail == "180.50 credit granted; 1 today"

    sweep = tiles["monitor_last_sweep"]
    assert (sweep.value, sweep.state) == ("30 s ago", "")
    assert sweep.detail == "2026-03-11 11:59:30 UTC; took 42 ms; 0 events waiting"
    assert tiles["monitor_paused"].state == "alert"

    pool = tiles["pool_availability"]
    assert pool.figures == {
        "rate": 0.75,
        "activations": 4,
        "instant": 3,
        "available": 2,
        "min_available": 25,
    }
    assert pool.value == "75.0%"
    assert pool.state == "alert"  # 2 available, under the minimum of 25

    delivery = tiles["delivery_success"]
    assert delivery.figures["delivered"] == 2 and delivery.figures["failed"] == 1
    assert delivery.value == "66.7%" and delivery.state == "warn"

    api = tiles["api_calls"]
    assert (api.figures["today"], api.figures["total"]) == (3, 6)
    assert api.figures["per_day"][date(2026, 3, 10)] == 2
    assert api.figures["per_day"][date(2026, 2, 10)] == 1
    assert len(api.figures["per_day"]) == 30
    assert api.value == "3 today"

    trades = tiles["trades_per_day"]
    assert (trades.figures["today"], trades.figures["total"], trades.figures["open"]) == (3, 4, 2)
    assert trades.detail == "4 trades in 30 days; 2 open now"


def test_the_charts_have_a_bar_or_a_dot_per_day_and_their_figures(known_data, make_user):
    tiles = tiles_of(make_user(role=Role.SUPER_ADMIN))

    for key, days in [("bonuses_per_day", 30), ("api_calls", 30), ("trades_per_day", 30)]:
        svg = str(tiles[key].chart)
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert len(chart_links(tiles[key])) == days, key
    assert re.findall(r'class="bd-bar"[^>]*data-value="(\d+)"', str(tiles["api_calls"].chart)) == [
        "1",
        "2",
        "3",
    ]
    pool = str(tiles["pool_availability"].chart)
    assert re.findall(r'class="bd-dot"[^>]*data-value="([\d.]+)"', pool) == ["100", "66.7"]


def test_a_sweep_long_ago_or_never_is_an_alert(known_data, make_user):
    from django.core.cache import cache

    from accounts.services.monitor import STATUS_CACHE_KEY

    user = make_user(role=Role.SUPER_ADMIN)
    cache.set(STATUS_CACHE_KEY, {"at": "2026-03-11T11:55:00+00:00", "ms": 40})
    sweep = tiles_of(user)["monitor_last_sweep"]
    assert (sweep.value, sweep.state) == ("5 min ago", "alert")
    cache.delete(STATUS_CACHE_KEY)
    sweep = tiles_of(user)["monitor_last_sweep"]
    assert (sweep.value, sweep.state) == ("never", "alert")


# --- Links ----------------------------------------------------------------------------------


def test_each_tile_links_to_the_filtered_list_that_shows_its_rows(known_data, super_admin):
    user, client = super_admin
    tiles = tiles_of(user)

    for key, rows in LIST_ROWS.items():
        assert rows_listed(client, tiles[key].url) == rows, key
    links = {
        link.label: link.url
        for tile in tiles.values()
        for link in tile.links
        if link.label != "Pool dashboard"
    }
    assert rows_listed(client, links["2 available accounts"]) == 2
    assert rows_listed(client, links["1 failed"]) == 1
    assert rows_listed(client, links["2 open"]) == 2
    pool = {link.label: link.url for link in tiles["pool_availability"].links}
    assert client.get(pool["Pool dashboard"]).status_code == 200


def test_each_bar_links_to_the_list_of_its_day(known_data, super_admin):
    user, client = super_admin
    tiles = tiles_of(user)
    first_day, empty_day = date(2026, 2, 10), date(2026, 3, 5)

    for key in ("bonuses_per_day", "api_calls", "trades_per_day"):
        per_day = tiles[key].figures["per_day"]
        links = chart_links(tiles[key])
        for day in sorted({day for day, n in per_day.items() if n} | {empty_day}):
            bar = links[(day - first_day).days]
            assert rows_listed(client, bar) == per_day.get(day, 0), (key, day)


def test_links_carry_utc_datetimes_and_comma_lists_the_admin_understands():
    url = changelist_url("bonuses.bonus", status__in=("active", "expired"), created_at__gte=MONDAY)

    assert url == (
        "/admin/bonuses/bonus/?status__in=active%2Cexpired"
        "&created_at__gte=2026-03-09T00%3A00%3A00%2B00%3A00"
    )
    assert changelist_url("campaigns.campaign") == "/admin/campaigns/campaign/"


# --- Who sees what --------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.name.lower())
def test_a_role_sees_the_tiles_of_what_it_may_view_in_the_admin(role, known_data, staff):
    response = staff(role).get("/admin/")

    assert response.status_code == 200
    assert set(shown_tiles(response)) == VISIBLE[role]
    assert shown_tiles(response) == [key for key in ALL if key in VISIBLE[role]]
    html = response.content.decode()
    if role != Role.SUPER_ADMIN:
        assert "/admin/licensing/" not in html.split('id="content-main"')[0]


def test_a_superuser_sees_every_tile(known_data, make_user):
    boss = make_user(is_staff=True, is_superuser=True)
    assert tile_keys_for(boss) == ALL


def test_staff_without_a_role_get_the_admin_index_without_a_dashboard(make_user):
    client = Client()
    client.force_login(make_user(is_staff=True))

    response = client.get("/admin/")

    assert response.status_code == 200
    assert b"staff-dashboard" not in response.content


def test_clients_and_deactivated_staff_see_no_tiles(make_user):
    assert tile_keys_for(make_user()) == []
    assert tile_keys_for(make_user(role=Role.SUPER_ADMIN, is_active=False)) == []
    client = Client()
    client.force_login(make_user())
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- An empty install and failures ----------------------------------------------------------


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.name.lower())
def test_a_fresh_install_renders_every_tile_with_nothing_to_show(role, staff):
    response = staff(role).get("/admin/")

    assert response.status_code == 200
    html = response.content.decode()
    assert set(shown_tiles(response)) == VISIBLE[role]
    assert "Nothing in this period yet" in html
    assert html.count('<svg class="bd-chart') == len(
        VISIBLE[role] & {"bonuses_per_day", "pool_availability", "api_calls", "trades_per_day"}
    )
    assert "unavailable" not in html
    assert not PoolConfig.objects.exists()  # the page reads the pool's settings, never writes


def test_a_fresh_install_shows_zeros_never_and_no_rate(make_user):
    tiles = tiles_of(make_user(role=Role.SUPER_ADMIN))

    assert {key: tile.value for key, tile in tiles.items()} == {
        "campaigns_active": "0",
        "bonuses_active": "0",
        "conversions_week": "0",
        "bonuses_per_day": "0",
        "monitor_paused": "0",
        "monitor_last_sweep": "never",
        "pool_availability": "n/a",
        "delivery_success": "n/a",
        "licenses_expiring": "0",
        "api_calls": "0 today",
        "sessions_active": "0",
        "trades_per_day": "0 today",
    }


def test_a_tile_that_cannot_be_read_says_so_and_the_page_still_renders(
    known_data, staff, monkeypatch, caplog
):
    def broken(reads):
        raise RuntimeError("the figures are not there")

    monkeypatch.setattr(
        dashboard,
        "TILES",
        tuple(
            dashboard.TileSpec(spec.key, spec.permission, broken, spec.title)
            if spec.key == "campaigns_active"
            else spec
            for spec in TILES
        ),
    )

    with caplog.at_level(logging.ERROR, logger="operations"):
        response = staff(Role.SUPER_ADMIN).get("/admin/")

    assert response.status_code == 200
    html = response.content.decode()
    tile = html.split('id="tile-campaigns_active"')[1].split("</section>")[0]
    assert "unavailable" in tile and "Active campaigns" in tile
    assert 'id="tile-bonuses_active"' in html
    assert "dashboard tile campaigns_active could not be read" in caplog.text


# --- Queries --------------------------------------------------------------------------------


def test_the_index_stays_within_its_query_budget(known_data, staff, django_assert_max_num_queries):
    client = staff(Role.SUPER_ADMIN)
    client.get("/admin/")  # the session and permission caches warm up as in real use

    with django_assert_max_num_queries(INDEX_QUERY_BUDGET):
        assert client.get("/admin/").status_code == 200


def test_the_dashboard_makes_a_few_queries_per_tile_however_many_rows(
    known_data, more_data, make_user
):
    user = make_user(role=Role.SUPER_ADMIN)
    user.has_perm("campaigns.view_campaign")  # permissions are read once per request

    with CaptureQueriesContext(connection) as before:
        dashboard_tiles(user=user)
    more_data()
    with CaptureQueriesContext(connection) as after:
        grown = tiles_of(user)

    assert grown["bonuses_active"].figures["active"] == 7  # the new rows are counted
    assert len(after) == len(before)
    assert len(before) <= 2 * len(TILES)


def test_the_week_starts_on_monday_and_the_charts_on_the_thirtieth_day_back(make_user):
    reads = dashboard.Reads()
    assert reads.now == NOW
    assert reads.week_start == MONDAY
    assert reads.since(30).date() == date(2026, 2, 10)
    assert reads.since(7).date() == date(2026, 3, 5)
