"""The thin tasks and beat's schedule."""

from datetime import timedelta

import pytest
import time_machine
from celery import current_app
from django.conf import settings
from django.utils import timezone

from delivery import tasks
from delivery.models import Delivery

pytestmark = pytest.mark.django_db


def test_beat_expires_overdue_links_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["delivery.expire_due"]
    current_app.loader.import_default_modules()

    assert entry["task"] == "delivery.expire_due" in current_app.tasks
    assert entry["schedule"].run_every == timedelta(seconds=60)
    assert entry["options"] == {"expire_seconds": 55}


def test_the_expiry_task_returns_how_many_it_expired(create):
    create()
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert tasks.expire_due() == 1
        assert tasks.expire_due() == 0
    assert Delivery.objects.get().status == "expired"


def test_the_channel_tasks_retry_only_transient_gateway_errors():
    from gateways.errors import TransientGatewayError

    for task in (tasks.send_telegram, tasks.send_email):
        assert task.autoretry_for == (TransientGatewayError,)
        assert task.retry_jitter is True
        assert task.max_retries == settings.DELIVERY_SEND_MAX_RETRIES
        assert task.retry_backoff_max == 300
