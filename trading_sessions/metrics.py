"""Trading gauges for /metrics, computed when Prometheus scrapes."""

import logging

from prometheus_client.core import GaugeMetricFamily

from core.metrics import register_scrape_collector

logger = logging.getLogger(__name__)


class TradingCollector:
    def describe(self):
        return []  # computed at scrape time: never query the database at registration

    def collect(self):
        from .selectors import trading_gauges

        try:
            gauges = trading_gauges()
        except Exception:  # a scrape must not fail because the database does
            logger.warning("trading metrics: the database did not answer", exc_info=True)
            return
        yield GaugeMetricFamily(
            "brokerdesk_trading_active_sessions",
            "Trading sessions running",
            value=gauges["active_sessions"],
        )
        yield GaugeMetricFamily(
            "brokerdesk_trading_trades_per_minute",
            "Trades created in the last 60 seconds",
            value=gauges["trades_last_minute"],
        )
        yield GaugeMetricFamily(
            "brokerdesk_trading_trades_unsettled",
            "Trades opening or open",
            value=gauges["trades_unsettled"],
        )
        yield GaugeMetricFamily(
            "brokerdesk_trading_signal_fanout_seconds",
            "Wall time of the last signal's fan-out",
            value=gauges["last_fanout_ms"] / 1000,
        )
        yield GaugeMetricFamily(
            "brokerdesk_trading_signal_fanout_trades",
            "Trades the last signal's fan-out created",
            value=gauges["last_fanout_trades"],
        )


def register() -> None:
    register_scrape_collector(TradingCollector())
