"""Delivery counts by method and status, and success rates, as /metrics gauges."""

import pytest

from delivery.services import delivery_reveal, delivery_send, delivery_send_failed

from .conftest import token_of

pytestmark = pytest.mark.django_db


def scrape(client) -> dict[str, float]:
    samples = {}
    for line in client.get("/metrics").content.decode().splitlines():
        if line.startswith("brokerdesk_delivery_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_deliveries_by_method_and_status_and_rate_their_success(
    client, create, telegram
):
    delivery_reveal(token=token_of(create()), ip=None)
    create(method="qr")
    sent = create(method="telegram", contact="5550001")
    delivery_send(delivery_id=sent.delivery.pk)
    failed = create(method="telegram", contact="5550002")
    delivery_send_failed(delivery_id=failed.delivery.pk, error="chat not found")
    create(method="email", contact="a@example.com")

    samples = scrape(client)

    assert samples['brokerdesk_delivery_deliveries{method="api",status="revealed"}'] == 1
    assert samples['brokerdesk_delivery_deliveries{method="qr",status="sent"}'] == 1
    assert samples['brokerdesk_delivery_deliveries{method="telegram",status="sent"}'] == 1
    assert samples['brokerdesk_delivery_deliveries{method="telegram",status="failed"}'] == 1
    assert samples['brokerdesk_delivery_deliveries{method="email",status="pending"}'] == 1
    assert samples['brokerdesk_delivery_deliveries{method="email",status="sent"}'] == 0
    assert samples['brokerdesk_delivery_success_rate{method="telegram"}'] == 0.5
    assert samples['brokerdesk_delivery_success_rate{method="api"}'] == 1.0
    assert samples['brokerdesk_delivery_success_rate{method="all"}'] == 0.75
    assert 'brokerdesk_delivery_success_rate{method="email"}' not in samples  # nothing tried


def test_the_gauges_follow_the_database_between_scrapes(client, create):
    assert scrape(client)['brokerdesk_delivery_deliveries{method="api",status="sent"}'] == 0
    create()
    assert scrape(client)['brokerdesk_delivery_deliveries{method="api",status="sent"}'] == 1
