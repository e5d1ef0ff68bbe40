from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from licensing.keys import key_generate
from licensing.models import License
from licensing.services import license_extend, license_suspend
from licensing.signing import public_key_b64, verify

URL = "/api/v1/licenses/validate/"
pytestmark = pytest.mark.django_db


def validate(api, key, **extra):
    return api.post(URL, {"license_key": key, **extra}, format="json")


def wrong_check_character(key: str) -> str:
    last = key[-1]
    return key[:-1] + ("0" if last != "0" else "1")


def test_a_valid_key_is_valid_with_its_type_expiry_and_the_nonce_echoed(api, make_license):
    license, key = make_license(License.Type.MONTHLY, account_id="U1")
    response = validate(api, key, nonce="n-123", machine_id="m1")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["code"] == "VALID"
    assert body["license_type"] == "MONTHLY"
    assert body["account_id"] == "U1"
    assert body["nonce"] == "n-123"
    assert body["expires_at"].startswith(license.expires_at.strftime("%Y-%m-%dT%H:%M"))
    assert body["ts"]


def test_an_expired_key_says_expired(api, make_license):
    _, key = make_license(License.Type.TRIAL)
    with time_machine.travel(timezone.now() + timedelta(days=15)):
        body = validate(api, key).json()
    assert (body["valid"], body["code"]) == (False, "EXPIRED")


def test_an_unknown_well_formed_key_says_not_found(api, db):
    body = validate(api, key_generate()).json()
    assert (body["valid"], body["code"], body["license_type"]) == (False, "NOT_FOUND", None)


def test_a_key_with_a_wrong_check_character_is_400_without_a_query(
    api, make_license, django_assert_num_queries
):
    _, key = make_license()
    with django_assert_num_queries(0):
        response = validate(api, wrong_check_character(key))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_license_key"


def test_the_signature_verifies_with_the_public_key_and_fails_when_the_answer_is_altered(
    api, make_license
):
    _, key = make_license()
    body = validate(api, key, nonce="abc").json()
    published = api.get("/api/v1/licenses/public-key/").json()
    assert published["algorithm"] == "Ed25519"
    assert published["public_key"] == public_key_b64()
    signature = body.pop("signature")
    assert verify(body, signature, published["public_key"])
    assert not verify({**body, "valid": False}, signature, published["public_key"])
    assert not verify({**body, "nonce": "abd"}, signature, published["public_key"])


def test_validation_writes_nothing_to_the_database_and_a_repeat_reads_nothing(api, make_license):
    _, key = make_license()
    with CaptureQueriesContext(connection) as first:
        validate(api, key)
    with CaptureQueriesContext(connection) as second:
        validate(api, key)
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in first.captured_queries)
    assert len(first.captured_queries) <= 1
    assert second.captured_queries == []


def test_suspend_then_validate_says_suspended_at_once(api, make_license):
    license, key = make_license()
    assert validate(api, key).json()["code"] == "VALID"  # cached now
    license_suspend(license=license, reason="chargeback")
    assert validate(api, key).json()["code"] == "SUSPENDED"


def test_a_key_created_after_a_not_found_answer_is_valid_at_once(api, make_license, settings):
    from licensing.services import licenses

    key = key_generate()
    assert validate(api, key).json()["code"] == "NOT_FOUND"
    # Issue a license for exactly that key: the cached NOT_FOUND must go.
    original = licenses.key_generate
    licenses.key_generate = lambda: key
    try:
        make_license()
    finally:
        licenses.key_generate = original
    assert validate(api, key).json()["code"] == "VALID"


def test_extend_after_expiry_counts_from_now(make_license, api):
    license, key = make_license(License.Type.TRIAL)
    later = timezone.now() + timedelta(days=40)
    with time_machine.travel(later, tick=False):
        assert validate(api, key).json()["code"] == "EXPIRED"
        license = license_extend(license=license, days=10)
        assert license.expires_at == timezone.now() + timedelta(days=10)
        assert validate(api, key).json()["code"] == "VALID"


def test_extend_before_expiry_adds_to_the_current_expiry(make_license):
    license, _ = make_license(License.Type.MONTHLY)
    before = license.expires_at
    assert license_extend(license=license, days=5).expires_at == before + timedelta(days=5)


def test_a_request_without_a_key_is_400(api, db):
    assert api.post(URL, {}, format="json").status_code == 400


@pytest.mark.redis
def test_a_cached_validation_is_one_redis_round_trip_and_no_query(
    api, make_license, redis_round_trips, django_assert_num_queries
):
    """Both limits, the cached snapshot and the usage log in one script: the hot path's cost.
    A key not cached yet costs one query, and two more trips: caching it, logging the call."""
    _, key = make_license()
    validate(api, key_generate())  # connects, loads the script
    redis_round_trips["sent"] = 0
    with django_assert_num_queries(1):
        assert validate(api, key).json()["code"] == "VALID"
    assert redis_round_trips["sent"] == 3
    redis_round_trips["sent"] = 0
    with django_assert_num_queries(0):
        body = validate(api, key, nonce="n1").json()
    assert body["code"] == "VALID"
    assert redis_round_trips["sent"] == 1


def test_with_redis_unreachable_validation_reads_the_database_and_limits_in_memory(
    api, make_license, settings, redis_goes_down, caplog
):
    _, key = make_license()
    suspended, suspended_key = make_license()
    license_suspend(license=suspended, reason="chargeback")
    assert validate(api, suspended_key).json()["code"] == "SUSPENDED"  # cached, where it can be
    redis_goes_down()
    settings.LICENSE_VALIDATE_RATE_LIMIT_PER_KEY = "2/min"
    answers = [validate(api, key, nonce=str(i)) for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    body = answers[0].json()
    signature = body.pop("signature")
    assert body["code"] == "VALID" and verify(body, signature, public_key_b64())
    assert answers[1]["X-RateLimit-Remaining"] == "0"
    assert validate(api, suspended_key).json()["code"] == "SUSPENDED"
    assert api.get("/api/v1/rate-limit/status/").json()["backend"] == "memory"
    fallbacks = [r for r in caplog.records if "limiting in process memory" in r.getMessage()]
    assert len(fallbacks) == 1


def test_a_malformed_request_still_counts_on_the_address_limit(api, make_license, settings):
    settings.LICENSE_VALIDATE_RATE_LIMIT_PER_IP = "2/min"
    _, key = make_license()
    assert validate(api, wrong_check_character(key)).status_code == 400
    assert api.post(URL, {"nonce": "no key"}, format="json").status_code == 400
    refused = validate(api, key)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"


def test_the_body_is_read_as_the_input_serializer_reads_it(api, make_license):
    _, key = make_license()
    body = validate(api, f"  {key.lower()}  ", nonce="  n-1  ").json()
    assert (body["code"], body["nonce"]) == ("VALID", "n-1")
    unicode = validate(api, key, nonce="nonce-é").json()
    signature = unicode.pop("signature")
    assert unicode["nonce"] == "nonce-é" and verify(unicode, signature, public_key_b64())
    too_long = validate(api, key, nonce="x" * 129)
    assert too_long.status_code == 400 and "nonce" in too_long.json()
    null_nonce = api.post(URL, {"license_key": key, "nonce": None}, format="json")
    assert null_nonce.status_code == 400 and "nonce" in null_nonce.json()
    not_text = api.post(URL, {"license_key": ["a"]}, format="json")
    assert not_text.status_code == 400 and "license_key" in not_text.json()
    form = api.post(URL, {"license_key": key, "nonce": "form"})  # multipart, as DRF reads it
    assert (form.status_code, form.json()["nonce"]) == (200, "form")


def test_the_answer_is_json_whatever_the_client_accepts(api, make_license):
    _, key = make_license()
    response = api.post(URL, {"license_key": key}, format="json", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "VALID"
