from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.roles import Role
from licensing.models import License

pytestmark = pytest.mark.django_db
USERS = "/api/v1/admin/users/"


@pytest.fixture
def admin_api(api, make_user):
    api.force_authenticate(make_user(role=Role.SUPER_ADMIN))  # JWTs expire when time travels
    return api


def test_only_a_super_admin_or_an_admin_license_may_administer(
    api, as_user, make_user, make_license
):
    assert api.get(USERS).status_code == 401
    for role in (None, Role.CAMPAIGN_MANAGER, Role.SUPPORT_AGENT, Role.READ_ONLY):
        assert as_user(make_user(role=role)).get(USERS).status_code == 403
    api.credentials()
    _, monthly_key = make_license(License.Type.MONTHLY)
    assert api.get(USERS, HTTP_X_LICENSE_KEY=monthly_key).status_code == 403
    _, admin_key = make_license(License.Type.ADMIN)
    assert api.get(USERS, HTTP_X_LICENSE_KEY=admin_key).status_code == 200


def test_adding_a_user_shows_the_key_once_and_audits_it(admin_api):
    response = admin_api.post(
        USERS,
        {
            "account_id": "USER001",
            "email": "u@example.com",
            "license_type": "BETA",
            "license_duration_days": 90,
            "notes": "from Discord",
        },
        format="json",
    )
    assert response.status_code == 201
    key = response.json()["license_key"]
    assert key.startswith("QT-")
    detail = admin_api.get(f"{USERS}USER001/").json()
    assert "license_key" not in detail["license"]
    assert detail["license"]["key_last4"] == key[-4:]
    assert AuditEvent.objects.filter(
        action="license.create", object_id=str(License.objects.get(account_id="USER001").pk)
    ).exists()
    assert (
        admin_api.post(
            USERS, {"account_id": "USER001", "license_type": "BETA"}, format="json"
        ).status_code
        == 409
    )


def test_extend_suspend_activate_through_the_api(admin_api, make_license, api):
    license, _key = make_license(License.Type.TRIAL, account_id="T1")
    with time_machine.travel(timezone.now() + timedelta(days=30), tick=False):
        response = admin_api.put(
            f"{USERS}T1/extend-license/", {"additional_days": 7}, format="json"
        )
        assert response.status_code == 200
        license.refresh_from_db()
        assert license.expires_at == timezone.now() + timedelta(days=7)
    response = admin_api.put(f"{USERS}T1/suspend/", {"reason": "abuse"}, format="json")
    assert response.json()["code"] == "SUSPENDED"
    assert admin_api.put(f"{USERS}T1/suspend/", {}, format="json").status_code == 409
    assert admin_api.put(f"{USERS}T1/activate/").json()["code"] == "VALID"
    actions = set(
        AuditEvent.objects.filter(object_id=str(license.pk)).values_list("action", flat=True)
    )
    assert {"license.extend", "license.suspend", "license.activate"} <= actions


def test_the_list_filters_by_type_status_and_search(admin_api, make_license):
    make_license(License.Type.ANNUAL, account_id="alpha", email="a@x.io")
    make_license(License.Type.TRIAL, account_id="beta")
    with time_machine.travel(timezone.now() + timedelta(days=20)):
        assert [
            r["account_id"] for r in admin_api.get(USERS, {"status": "EXPIRED"}).json()["results"]
        ] == ["beta"]
    assert admin_api.get(USERS, {"license_type": "ANNUAL"}).json()["count"] == 1
    assert admin_api.get(USERS, {"search": "x.io"}).json()["results"][0]["account_id"] == "alpha"


def test_stats_count_states_types_calls_and_trades(admin_api, make_license):
    make_license(License.Type.ANNUAL)
    make_license(License.Type.TRIAL)
    stats = admin_api.get("/api/v1/admin/stats/").json()
    assert stats["users_total"] == 2
    assert stats["active"] == 2
    assert stats["by_license_type"]["ANNUAL"] == 1
    assert stats["trades_total"] == 0


def test_an_admin_license_never_expires_and_cannot_be_extended(admin_api, make_license):
    license, _ = make_license(License.Type.ADMIN, account_id="root")
    assert license.expires_at is None
    response = admin_api.put(f"{USERS}root/extend-license/", {"additional_days": 1}, format="json")
    assert response.status_code == 409


def test_a_signed_license_file_verifies_offline(admin_api, make_license):
    from licensing.signing import verify

    make_license(License.Type.MONTHLY, account_id="F1")
    body = admin_api.get("/api/v1/licenses/F1/file/").json()
    assert verify(body["license"], body["signature"], body["public_key"])
    assert body["license"]["code"] == "VALID"


def test_a_change_made_with_an_admin_license_key_names_that_license_in_the_audit(api, make_license):
    _, admin_key = make_license(License.Type.ADMIN, account_id="root")
    response = api.post(
        USERS,
        {"account_id": "U7", "license_type": "TRIAL"},
        format="json",
        HTTP_X_LICENSE_KEY=admin_key,
    )
    assert response.status_code == 201
    api.put(f"{USERS}U7/suspend/", {"reason": "abuse"}, format="json", HTTP_X_LICENSE_KEY=admin_key)
    api.put(f"{USERS}U7/activate/", format="json", HTTP_X_LICENSE_KEY=admin_key)
    api.put(
        f"{USERS}U7/extend-license/",
        {"additional_days": 3},
        format="json",
        HTTP_X_LICENSE_KEY=admin_key,
    )
    license = License.objects.get(account_id="U7")
    events = AuditEvent.objects.filter(object_id=str(license.pk)).order_by("seq")
    assert [e.action for e in events] == [
        "license.create",
        "license.suspend",
        "license.activate",
        "license.extend",
    ]
    for event in events:
        assert (event.actor_id, event.actor_label) == (None, "system")
        assert event.after["by_license"] == {"account_id": "root", "key_last4": admin_key[-4:]}


def test_a_change_made_by_a_signed_in_super_admin_names_the_user_and_no_license(
    admin_api, make_license
):
    make_license(License.Type.TRIAL, account_id="T9")
    admin_api.put(f"{USERS}T9/suspend/", {"reason": "abuse"}, format="json")
    event = AuditEvent.objects.get(action="license.suspend")
    assert event.actor_id is not None
    assert "by_license" not in event.after


def test_adding_a_user_with_delivery_sends_the_key_by_a_one_time_link_only(admin_api, api):
    from delivery.services import delivery_reveal

    response = admin_api.post(
        USERS,
        {"account_id": "D1", "license_type": "MONTHLY", "delivery_method": "api"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["license_key"] is None
    assert (body["delivery"]["method"], body["delivery"]["status"]) == ("api", "sent")
    token = body["delivery"]["link"].rstrip("/").rsplit("/", 1)[1]
    revealed = delivery_reveal(token=token, ip=None).payload
    assert revealed["account_id"] == "D1"
    assert revealed["license_key"][-4:] == body["key_last4"]
    validated = api.post(
        "/api/v1/licenses/validate/", {"license_key": revealed["license_key"]}, format="json"
    )
    assert validated.json()["code"] == "VALID"
    assert AuditEvent.objects.filter(action="license.key_delivery").count() == 1


def test_a_key_sent_by_telegram_is_not_in_the_answer_and_a_bad_contact_makes_no_license(
    admin_api,
):
    sent = admin_api.post(
        USERS,
        {
            "account_id": "D2",
            "license_type": "TRIAL",
            "delivery_method": "telegram",
            "contact_info": "@brokerdesk_clients",
        },
        format="json",
    ).json()
    assert sent["license_key"] is None
    assert sent["delivery"]["link"] is None  # the link goes to the chat, not to the caller
    assert (sent["delivery"]["method"], sent["delivery"]["contact"]) == (
        "telegram",
        "@brokerdesk_clients",
    )
    refused = admin_api.post(
        USERS,
        {
            "account_id": "D3",
            "license_type": "TRIAL",
            "delivery_method": "email",
            "contact_info": "not-an-address",
        },
        format="json",
    )
    assert refused.status_code == 400
    assert "contact_info" in refused.json()
    assert not License.objects.filter(account_id="D3").exists()
