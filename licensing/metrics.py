"""Licensing gauges for /metrics, computed when Prometheus scrapes."""

import logging

from prometheus_client.core import GaugeMetricFamily

from core.metrics import register_scrape_collector

logger = logging.getLogger(__name__)


class LicensingCollector:
    def describe(self):
        return []  # computed at scrape time: never query the database at registration

    def collect(self):
        from .selectors import licensing_stats

        try:
            stats = licensing_stats()
        except Exception:  # a scrape must not fail because the database does
            logger.warning("licensing metrics: the database did not answer", exc_info=True)
            return
        licenses = GaugeMetricFamily(
            "brokerdesk_licensing_licenses", "Licenses by state", labels=["state"]
        )
        for state in ("active", "expired", "suspended"):
            licenses.add_metric([state], stats[state])
        yield licenses
        by_type = GaugeMetricFamily(
            "brokerdesk_licensing_licenses_by_type", "Licenses by type", labels=["type"]
        )
        for name, count in stats["by_license_type"].items():
            by_type.add_metric([name], count)
        yield by_type
        yield GaugeMetricFamily(
            "brokerdesk_licensing_api_calls_24h",
            "API calls logged in the last 24 hours",
            value=stats["api_calls_24h"],
        )
        yield GaugeMetricFamily(
            "brokerdesk_licensing_reported_trades", "Trades reported", value=stats["trades_total"]
        )


def register() -> None:
    register_scrape_collector(LicensingCollector())
