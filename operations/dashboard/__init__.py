"""The staff dashboard on the admin index: the figures that matter, per role.

Each tile reads through its app's selectors or models in one to three queries (aggregates and
one GROUP BY per chart: nothing grows with the number of rows), needs one model view permission
(a role sees the tiles of what it may view in the admin), and links to the filtered changelist
behind its figure. Days are UTC days; "this week" starts on Monday 00:00 UTC.

`dashboard_tiles(user=...)` builds only the tiles the user may see. A tile whose read fails is
shown as unavailable and logged: the admin index is how staff fix things, so it always renders.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .common import Link, Reads, Tile, changelist_url
from .tiles import (
    tile_api_calls,
    tile_bonuses_active,
    tile_bonuses_per_day,
    tile_campaigns,
    tile_conversions,
    tile_delivery,
    tile_last_sweep,
    tile_licenses_expiring,
    tile_monitor_paused,
    tile_pool,
    tile_sessions,
    tile_trades_per_day,
)

__all__ = [
    "TILES",
    "Link",
    "Reads",
    "Tile",
    "TileSpec",
    "changelist_url",
    "dashboard_tiles",
    "tile_keys_for",
]

logger = logging.getLogger("operations")


@dataclass(frozen=True)
class TileSpec:
    key: str
    permission: str
    build: Callable[[Reads], Tile]
    title: str


# In the order they are shown. A role sees a tile when it holds the view permission of the
# model behind it, which is what accounts.roles.ROLE_MODEL_PERMISSIONS gives it in the admin.
TILES: tuple[TileSpec, ...] = (
    TileSpec("campaigns_active", "campaigns.view_campaign", tile_campaigns, "Active campaigns"),
    TileSpec("bonuses_active", "bonuses.view_bonus", tile_bonuses_active, "Active bonuses"),
    TileSpec(
        "conversions_week",
        "bonuses.view_creditintent",
        tile_conversions,
        "Conversions this week",
    ),
    TileSpec(
        "bonuses_per_day", "bonuses.view_bonus", tile_bonuses_per_day, "Bonuses granted per day"
    ),
    TileSpec(
        "monitor_paused",
        "accounts.view_monitoredaccount",
        tile_monitor_paused,
        "Accounts paused by the monitor",
    ),
    TileSpec(
        "monitor_last_sweep",
        "accounts.view_monitoredaccount",
        tile_last_sweep,
        "Last monitor sweep",
    ),
    TileSpec(
        "pool_availability", "demo_pool.view_pool_status", tile_pool, "Demo pool availability"
    ),
    TileSpec("delivery_success", "delivery.view_delivery", tile_delivery, "Delivery success rate"),
    TileSpec(
        "licenses_expiring",
        "licensing.view_license",
        tile_licenses_expiring,
        "Licenses expiring in 7 days",
    ),
    TileSpec("api_calls", "licensing.view_apiusagelog", tile_api_calls, "API calls per day"),
    TileSpec(
        "sessions_active",
        "trading_sessions.view_tradingsession",
        tile_sessions,
        "Active trading sessions",
    ),
    TileSpec(
        "trades_per_day", "trading_sessions.view_trade", tile_trades_per_day, "Trades per day"
    ),
)


def tile_keys_for(user) -> list[str]:
    """The keys of the tiles this user may see (no figures read)."""
    if not (user.is_active and user.is_staff):
        return []
    return [spec.key for spec in TILES if user.has_perm(spec.permission)]


def dashboard_tiles(*, user, now: datetime | None = None) -> list[Tile]:
    """The tiles this staff user may see, with their figures as of `now` (default: now)."""
    keys = set(tile_keys_for(user))
    reads = Reads(now)
    tiles = []
    for spec in TILES:
        if spec.key not in keys:
            continue
        try:
            tiles.append(spec.build(reads))
        except Exception:
            logger.exception("dashboard tile %s could not be read", spec.key)
            tiles.append(
                Tile(
                    key=spec.key,
                    title=spec.title,
                    value="unavailable",
                    detail="This figure could not be read just now; the error is in the log.",
                    url="",
                    state="alert",
                )
            )
    return tiles
