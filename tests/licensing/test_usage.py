from datetime import timedelta

import pytest
from django.utils import timezone

from licensing.models import ApiUsageLog, License
from licensing.services import usage_flush, usage_purge

pytestmark = pytest.mark.django_db


def test_api_calls_are_queued_then_written_in_bulk_with_the_license_and_last_active(
    api, make_license, django_assert_num_queries
):
    license, key = make_license()
    for _ in range(3):
        api.post(
            "/api/v1/licenses/validate/",
            {"license_key": key},
            format="json",
            HTTP_USER_AGENT="client/1.0",
        )
    assert ApiUsageLog.objects.count() == 0
    result = usage_flush()
    assert result == {"calls": 3, "licenses": 1}
    row = ApiUsageLog.objects.first()
    assert (row.endpoint, row.method, row.status_code, row.license_id, row.user_agent) == (
        "/api/v1/licenses/validate/",
        "POST",
        200,
        license.pk,
        "client/1.0",
    )
    assert row.response_ms >= 0
    license.refresh_from_db()
    assert license.last_active_at is not None
    assert usage_flush() == {"calls": 0, "licenses": 0}


def test_a_call_by_a_signed_in_user_records_the_user(as_user, make_user):
    user = make_user()
    as_user(user).get("/api/v1/subscriptions/")
    usage_flush()
    assert ApiUsageLog.objects.get().user_id == user.pk


def test_without_redis_calls_are_spooled_to_files_and_flushed(
    api, settings, make_license, tmp_path
):
    from licensing import redis_client

    settings.REDIS_URL = ""
    redis_client.redis_for.cache_clear()
    api.get("/api/v1/licenses/public-key/")
    assert list((tmp_path / "spool").glob("usage-*.jsonl"))
    assert usage_flush()["calls"] == 1
    assert list((tmp_path / "spool").glob("*")) == []


def test_calls_older_than_the_retention_are_purged(settings):
    settings.LICENSE_USAGE_RETENTION_DAYS = 90
    now = timezone.now()
    for age in (1, 89, 91, 200):
        ApiUsageLog.objects.create(
            created_at=now - timedelta(days=age),
            endpoint="/x",
            method="GET",
            status_code=200,
            response_ms=1,
        )
    assert usage_purge() == 2
    assert ApiUsageLog.objects.count() == 2


def test_non_api_paths_are_not_logged(client, db):
    client.get("/healthz")
    assert usage_flush()["calls"] == 0


def test_expire_due_marks_past_licenses_expired(make_license):
    import time_machine

    from licensing.services import licenses_expire_due

    trial, _ = make_license(License.Type.TRIAL)
    make_license(License.Type.ANNUAL)
    with time_machine.travel(timezone.now() + timedelta(days=20)):
        assert licenses_expire_due() == 1
    trial.refresh_from_db()
    assert trial.status == License.Status.EXPIRED
