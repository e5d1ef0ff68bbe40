"""The registry of gauges read from the database and the cache when `/metrics` is scraped.

A collector registered with `register_scrape_collector` answers on prometheus_client's
default registry, and also under gunicorn's multiprocess mode, where `config.metrics` builds
a fresh registry per scrape and adds these (they read shared state, not process memory).
Each app registers its own collectors from its `AppConfig.ready()`.
"""

from prometheus_client import REGISTRY

SCRAPE_COLLECTORS: list = []


def register_scrape_collector(collector) -> None:
    """Serve `collector` on /metrics (once, however often the app registry is set up)."""
    if any(type(existing) is type(collector) for existing in SCRAPE_COLLECTORS):
        return
    SCRAPE_COLLECTORS.append(collector)
    REGISTRY.register(collector)
