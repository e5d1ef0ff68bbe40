"""Fifty reveals of one link at once (PostgreSQL: real threads, each on its own connection)."""

import pytest

from delivery.errors import LinkUsedError
from delivery.models import Delivery, DeliveryAttempt
from delivery.services import delivery_reveal
from tests.concurrency import run_at_once as at_once

from .conftest import PAYLOAD, token_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 50


def run_at_once(work) -> tuple[list, list]:
    """Run `work(n)` in THREADS threads released together; return (results, errors)."""
    return at_once(work, threads=THREADS)


def test_fifty_concurrent_reveals_of_one_link_give_the_payload_exactly_once(create):
    result = create()
    token = token_of(result)

    results, errors = run_at_once(
        lambda n: delivery_reveal(token=token, ip=f"10.0.0.{n + 1}", user_agent=f"client {n}")
    )

    assert [r.payload for r in results] == [PAYLOAD]
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, LinkUsedError) and e.status_code == 410 for e in errors)
    attempts = DeliveryAttempt.objects.filter(delivery=result.delivery)
    assert attempts.count() == THREADS
    assert attempts.filter(outcome="revealed").count() == 1
    assert attempts.filter(outcome="refused_used").count() == THREADS - 1
    assert len(set(attempts.values_list("ip", flat=True))) == THREADS
    delivery = Delivery.objects.filter(pk=result.delivery.pk).values().get()
    assert (delivery["status"], delivery["payload"]) == ("revealed", None)


def test_fifty_concurrent_page_reveals_show_the_secret_on_one_page(create):
    from django.test import Client

    token = token_of(create())

    results, errors = run_at_once(lambda n: Client().post(f"/d/{token}").status_code)

    assert errors == []
    assert sorted(results) == [200] + [410] * (THREADS - 1)
