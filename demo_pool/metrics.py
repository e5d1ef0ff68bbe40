"""Demo pool gauges for /metrics, read from the database when scraped."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class DemoPoolCollector:
    """Accounts by status, queue depth, provisioning latency, assignments."""

    def describe(self):
        return []  # computed at scrape time: never query the database at registration

    def collect(self):
        from demo_pool.models import PressPass
        from demo_pool.selectors import pool_status

        status = pool_status()
        accounts = GaugeMetricFamily(
            "brokerdesk_demo_pool_accounts", "Demo pool accounts by status", labels=["status"]
        )
        for name in ("available", "assigned", "provisioning", "failed", "expired", "retired"):
            accounts.add_metric([name], status[name])
        yield accounts
        yield GaugeMetricFamily(
            "brokerdesk_demo_pool_queue_depth",
            "Press-pass activations waiting for an account",
            value=status["queue_depth"],
        )
        latency = GaugeMetricFamily(
            "brokerdesk_demo_pool_provisioning_latency_seconds",
            "Provisioning time from queued to available over 7 days",
            labels=["quantile"],
        )
        latency.add_metric(["0.5"], (status["provisioning_p50_ms"] or 0) / 1000)
        latency.add_metric(["0.95"], (status["provisioning_p95_ms"] or 0) / 1000)
        yield latency
        yield GaugeMetricFamily(
            "brokerdesk_demo_pool_availability_rate",
            "Share of press-pass activations served at once over 7 days",
            value=status["availability_rate"],
        )
        yield CounterMetricFamily(
            "brokerdesk_demo_pool_assignments",
            "Press passes ever activated",
            value=PressPass.objects.count(),
        )
