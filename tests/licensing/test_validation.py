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
