from datetime import timedelta

import pytest
from django.utils import timezone

from licensing.keys import key_generate
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
    assert result == {"calls": 3, "licenses": 1, "dropped": 0}
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
    assert usage_flush() == {"calls": 0, "licenses": 0, "dropped": 0}


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


def test_each_validation_is_logged_once_with_its_status_and_license(api, make_license, settings):
    settings.LICENSE_VALIDATE_RATE_LIMIT_PER_KEY = "2/min"
    license, key = make_license()
    unknown = key_generate()
    for body in (key, key, key, unknown, unknown):
        api.post("/api/v1/licenses/validate/", {"license_key": body}, format="json")
    assert usage_flush()["calls"] == 5
    logged = list(
        ApiUsageLog.objects.order_by("created_at", "id").values_list("status_code", "license_id")
    )
    assert logged == [
        (200, license.pk),  # the first reads the database: logged after the answer
        (200, license.pk),  # from the cache: logged in the limits' round trip
        (429, None),
        (200, None),
        (200, None),
    ]


def test_a_validation_that_fails_after_its_call_was_queued_logs_the_failure_too(
    make_license, monkeypatch
):
    from django.test import Client

    from licensing.services import validation

    _, key = make_license()
    client = Client(raise_request_exception=False)
    client.post("/api/v1/licenses/validate/", {"license_key": key}, "application/json")
    monkeypatch.setattr(validation, "signed_json", lambda answer: 1 / 0)
    failed = client.post("/api/v1/licenses/validate/", {"license_key": key}, "application/json")
    assert failed.status_code == 500
    usage_flush()
    assert ApiUsageLog.objects.filter(status_code=500).count() == 1


def test_the_flush_sets_last_active_in_one_update_and_never_moves_it_back(
    make_license, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from licensing.services.usage import usage_enqueue

    licenses = [make_license()[0] for _ in range(3)]
    now = timezone.now()
    later = now + timedelta(minutes=5)
    License.objects.filter(pk=licenses[2].pk).update(last_active_at=later)
    for license, ages in zip(licenses, ([30, 10], [20], [1]), strict=True):
        for age in ages:
            usage_enqueue(
                {
                    "at": (now - timedelta(seconds=age)).timestamp(),
                    "endpoint": "/api/v1/licenses/validate/",
                    "method": "POST",
                    "status_code": 200,
                    "response_ms": 1.0,
                    "ip": "203.0.113.9",
                    "user_agent": "client/2.0",
                    "license_id": license.pk,
                    "user_id": None,
                }
            )
    with CaptureQueriesContext(connection) as flush:
        assert usage_flush() == {"calls": 4, "licenses": 3, "dropped": 0}
    updates = [q["sql"] for q in flush.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1
    actives = [License.objects.get(pk=lic.pk).last_active_at for lic in licenses]
    assert [round((now - at).total_seconds()) for at in actives[:2]] == [10, 20]
    assert actives[2] == later  # a newer time already recorded stays
