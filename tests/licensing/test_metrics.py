"""The licensing gauges on /metrics, computed from the database at each scrape."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from licensing.models import ApiUsageLog, License, ReportedTrade
from licensing.services import license_suspend

pytestmark = pytest.mark.django_db


def scrape(client) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for line in response.content.decode().splitlines():
        if line.startswith("brokerdesk_licensing_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def call(at):
    return ApiUsageLog(
        created_at=at,
        endpoint="/api/v1/licenses/validate/",
        method="POST",
        status_code=200,
        response_ms=1.0,
    )


def test_metrics_count_licenses_by_state_and_type_calls_of_the_day_and_trades(client, make_license):
    make_license(License.Type.ANNUAL)
    trial, _ = make_license(License.Type.TRIAL)
    suspended, _ = make_license(License.Type.MONTHLY)
    license_suspend(license=suspended, reason="chargeback")
    now = timezone.now()
    ApiUsageLog.objects.bulk_create(
        [call(now), call(now - timedelta(hours=2)), call(now - timedelta(days=2))]
    )
    ReportedTrade.objects.create(
        license=trial,
        symbol="EURUSD",
        side="BUY",
        quantity=1,
        entry_price=1,
        exit_price=2,
        pnl=1,
        opened_at=now - timedelta(hours=1),
        closed_at=now,
    )
    with time_machine.travel(now + timedelta(days=15)):  # the TRIAL has expired by then
        samples = scrape(client)
    assert samples['brokerdesk_licensing_licenses{state="active"}'] == 1
    assert samples['brokerdesk_licensing_licenses{state="expired"}'] == 1
    assert samples['brokerdesk_licensing_licenses{state="suspended"}'] == 1
    assert samples['brokerdesk_licensing_licenses_by_type{type="TRIAL"}'] == 1
    assert samples['brokerdesk_licensing_licenses_by_type{type="ADMIN"}'] == 0
    assert samples["brokerdesk_licensing_reported_trades"] == 1
    assert samples["brokerdesk_licensing_api_calls_24h"] == 0  # 15 days later: none that recent
    assert scrape(client)["brokerdesk_licensing_api_calls_24h"] == 2


def test_the_gauges_follow_the_database_between_scrapes(client, make_license):
    assert scrape(client)['brokerdesk_licensing_licenses{state="active"}'] == 0
    make_license()
    assert scrape(client)['brokerdesk_licensing_licenses{state="active"}'] == 1
