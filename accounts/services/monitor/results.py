"""What a sweep reports: its counts, and the record of the last one that `monitoring/status/`
and /metrics read."""

import logging
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

# One logger for the whole monitor, under the name it always had.
logger = logging.getLogger("accounts.services.monitor")

STATUS_CACHE_KEY = "monitor:last_sweep"


SWEEPS_CACHE_KEY = "monitor:sweeps_total"


@dataclass
class SweepResult:
    """Counts of one sweep (or one batch of it); the contract's `monitoring/sweep/` answer."""

    accounts: int = 0
    changed: int = 0
    deposits: int = 0
    withdrawals: int = 0
    drawdowns: int = 0
    trades: int = 0
    errors: int = 0
    paused: int = 0
    batches: int = 0
    outages: int = 0
    dispatched: int = 0
    ms: int = 0
    logins_with_events: set[int] = field(default_factory=set, repr=False)

    def add(self, other: "SweepResult") -> None:
        for name in (
            "accounts",
            "changed",
            "deposits",
            "withdrawals",
            "drawdowns",
            "trades",
            "errors",
            "paused",
            "batches",
            "outages",
            "dispatched",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.logins_with_events |= other.logins_with_events

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("logins_with_events")
        return data


def server_name() -> str:
    """The MT5 server the monitor watches (rows and events are keyed by it)."""
    return settings.MT5_SERVER


def sweep_record(result: SweepResult) -> None:
    """Leave the last sweep's time and counts where `monitoring/status/` and /metrics read."""
    data = result.as_dict()
    data["at"] = timezone.now().isoformat()
    cache.set(STATUS_CACHE_KEY, data, timeout=None)
    if not cache.add(SWEEPS_CACHE_KEY, 1, timeout=None):
        try:
            cache.incr(SWEEPS_CACHE_KEY)
        except ValueError:
            cache.set(SWEEPS_CACHE_KEY, 1, timeout=None)
