"""Delivery gauges for /metrics, computed from the database when Prometheus scrapes.

- `brokerdesk_delivery_deliveries{method, status}`: how many deliveries are in each state.
- `brokerdesk_delivery_success_rate{method}`: carried / (carried + failed); `method="all"`
  for every channel together. Absent while nothing has been tried.
"""

import logging

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.metrics import register_scrape_collector

logger = logging.getLogger("delivery")

COUNTS = "brokerdesk_delivery_deliveries"
SUCCESS = "brokerdesk_delivery_success_rate"


class DeliveryCollector(Collector):
    def describe(self):
        # Declared without samples, so registering never touches the database.
        return [
            GaugeMetricFamily(
                COUNTS, "Deliveries by method and status", labels=["method", "status"]
            ),
            GaugeMetricFamily(
                SUCCESS, "Share of deliveries their channel carried", labels=["method"]
            ),
        ]

    def collect(self):
        from delivery.models import Delivery
        from delivery.selectors import delivery_stats

        try:
            stats = delivery_stats()
        except Exception:  # a scrape must not fail because the database does
            logger.warning("delivery metrics: the database did not answer", exc_info=True)
            return
        counts = GaugeMetricFamily(
            COUNTS, "Deliveries by method and status", labels=["method", "status"]
        )
        for method in Delivery.Method.values:
            for status in Delivery.Status.values:
                counts.add_metric([method, status], stats.count(method=method, status=status))
        yield counts
        success = GaugeMetricFamily(
            SUCCESS, "Share of deliveries their channel carried", labels=["method"]
        )
        for method in [*Delivery.Method.values, None]:
            rate = stats.success_rate(method)
            if rate is not None:
                success.add_metric([method or "all"], rate)
        yield success


def register() -> None:
    """Serve the collector on /metrics, once per process (multiprocess mode included)."""
    register_scrape_collector(DeliveryCollector())
