"""The account monitor's gauges, read when `/metrics` is scraped (registered in `apps.py`
with `core.metrics.register_scrape_collector`)."""

from prometheus_client.core import GaugeMetricFamily


class MonitorCollector:
    """The account monitor: accounts by status, events waiting, the last sweep."""

    def describe(self):
        return []  # computed at scrape time: never query the database at registration

    def collect(self):
        from accounts.selectors import monitor_status

        status = monitor_status()
        accounts = GaugeMetricFamily(
            "brokerdesk_monitor_accounts", "Monitored MT5 accounts by status", labels=["status"]
        )
        accounts.add_metric(["active"], status["active"])
        accounts.add_metric(["paused"], status["paused"])
        yield accounts
        yield GaugeMetricFamily(
            "brokerdesk_monitor_events_pending",
            "Account events recorded and not handled yet",
            value=status["events_pending"],
        )
        yield GaugeMetricFamily(
            "brokerdesk_monitor_last_sweep_seconds",
            "Wall time of the last full sweep",
            value=(status["last_sweep_ms"] or 0) / 1000,
        )
        at = status["last_sweep_at"]
        yield GaugeMetricFamily(
            "brokerdesk_monitor_last_sweep_timestamp_seconds",
            "When the last sweep finished (Unix time; 0: never)",
            value=at.timestamp() if at else 0,
        )
        yield GaugeMetricFamily(
            "brokerdesk_monitor_sweeps",
            "Sweeps recorded since the cache was emptied",
            value=status["sweeps_total"],
        )
