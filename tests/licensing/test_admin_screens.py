"""The licensing staff screens: licenses (filters, actions, adding one with its key shown once
or sent by a one-time link) and the API usage log with its chart of calls per day."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.roles import Role
from licensing.models import ApiUsageLog, License

pytestmark = pytest.mark.django_db
LICENSES = "/admin/licensing/license/"
USAGE = "/admin/licensing/apiusagelog/"


@pytest.fixture
def staff(make_user):
    def login(role: Role = Role.SUPER_ADMIN) -> Client:
        client = Client()
        client.force_login(make_user(role=role, is_staff=True))
        return client

    return login


@pytest.fixture
def licenses(make_license):
    """One of each situation, created now; TRIAL runs 14 days, MONTHLY 30, ANNUAL 365."""
    made = {
        "trial": make_license(License.Type.TRIAL, account_id="trial")[0],
        "monthly": make_license(License.Type.MONTHLY, account_id="monthly")[0],
        "annual": make_license(License.Type.ANNUAL, account_id="annual")[0],
        "admin": make_license(License.Type.ADMIN, account_id="admin")[0],
        "old": make_license(License.Type.MONTHLY, account_id="old", duration_days=1)[0],
    }
    return made


def listed(response) -> list[str]:
    assert response.status_code == 200
    return sorted(license.account_id for license in response.context["cl"].result_list)


def act(client, action: str, *licenses: License):
    return client.post(
        LICENSES,
        {"action": action, "_selected_action": [str(lic.pk) for lic in licenses]},
        follow=True,
    )


def test_the_license_list_filters_by_type_status_and_expiry(staff, licenses):
    from licensing.services import license_suspend

    license_suspend(license=licenses["annual"], reason="chargeback")
    client = staff()
    assert listed(client.get(LICENSES, {"license_type__exact": "MONTHLY"})) == ["monthly", "old"]
    assert listed(client.get(LICENSES, {"status__exact": "SUSPENDED"})) == ["annual"]
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert listed(client.get(LICENSES, {"expiring": "past"})) == ["old"]
        # TRIAL ends in 12 days, MONTHLY in 28: "within 7 days" holds neither yet.
        assert listed(client.get(LICENSES, {"expiring": "7"})) == []
        assert listed(client.get(LICENSES, {"expiring": "30"})) == ["monthly", "trial"]
    with time_machine.travel(timezone.now() + timedelta(days=10)):
        assert listed(client.get(LICENSES, {"expiring": "7"})) == ["trial"]
    html = client.get(LICENSES).content.decode()
    assert "Expiring within 7 days" in html
    for license in licenses.values():
        assert license.key_hash not in html  # last four only


def test_the_actions_extend_suspend_and_activate_through_the_services(staff, licenses, api):
    client = staff()
    old = licenses["old"]
    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        page = act(client, "extend_30_days", old, licenses["admin"]).content.decode()
        old.refresh_from_db()
        assert old.expires_at == timezone.now() + timedelta(days=30)  # expired: from now
        assert "1 license(s) extended." in page
        assert "Admin: This license never expires." in page  # the admin capitalizes messages
    page = act(client, "suspend", licenses["trial"], licenses["monthly"]).content.decode()
    assert "2 license(s) suspended." in page
    assert set(License.objects.filter(status="SUSPENDED").values_list("account_id", flat=True)) == {
        "trial",
        "monthly",
    }
    act(client, "activate", licenses["trial"])
    licenses["trial"].refresh_from_db()
    assert licenses["trial"].status == License.Status.ACTIVE
    actors = set(
        AuditEvent.objects.filter(action__in=["license.extend", "license.suspend"])
        .exclude(actor=None)
        .values_list("action", flat=True)
    )
    assert actors == {"license.extend", "license.suspend"}


def test_a_suspension_in_the_admin_is_seen_by_validation_at_once(staff, make_license, api):
    license, key = make_license(account_id="live")
    validate = "/api/v1/licenses/validate/"
    assert api.post(validate, {"license_key": key}, format="json").json()["code"] == "VALID"
    act(staff(), "suspend", license)
    assert api.post(validate, {"license_key": key}, format="json").json()["code"] == "SUSPENDED"


def test_adding_a_license_shows_its_key_once_and_keeps_it_nowhere(staff, api):
    client = staff()
    assert client.get(f"{LICENSES}add/").status_code == 200
    response = client.post(
        f"{LICENSES}add/",
        {"account_id": "new1", "email": "n@x.io", "license_type": "BETA", "duration_days": "7"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = re.search(r'id="license-key" value="([^"]+)"', response.content.decode()).group(1)
    license = License.objects.get(account_id="new1")
    assert key[-4:] == license.key_last4
    assert license.expires_at.date() == (timezone.now() + timedelta(days=7)).date()
    assert key not in str(response.cookies)  # not parked in a message either
    later = client.get(LICENSES).content.decode()
    assert key not in later
    assert (
        api.post("/api/v1/licenses/validate/", {"license_key": key}, format="json").json()["code"]
        == "VALID"
    )
    assert AuditEvent.objects.get(action="license.create").actor_id is not None


def test_adding_a_license_with_delivery_shows_only_the_one_time_link(staff):
    from delivery.services import delivery_reveal

    client = staff()
    response = client.post(
        f"{LICENSES}add/",
        {"account_id": "new2", "license_type": "TRIAL", "delivery_method": "qr"},
    )
    html = response.content.decode()
    assert 'id="license-key"' not in html
    assert 'id="delivery-qr"' in html
    link = re.search(r'id="delivery-link" value="([^"]+)"', html).group(1)
    payload = delivery_reveal(token=link.rstrip("/").rsplit("/", 1)[1], ip=None).payload
    assert payload["license_key"][-4:] == License.objects.get(account_id="new2").key_last4
    assert payload["license_key"] not in html


def test_adding_a_license_refuses_a_contact_the_channel_cannot_use(staff):
    response = staff().post(
        f"{LICENSES}add/",
        {
            "account_id": "new3",
            "license_type": "TRIAL",
            "delivery_method": "telegram",
            "contact_info": "not a chat",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Telegram delivery needs a chat id" in response.content.decode()
    assert not License.objects.filter(account_id="new3").exists()


def test_licensing_screens_are_for_super_admins_only(staff, licenses):
    support = staff(Role.SUPPORT_AGENT)
    assert support.get(LICENSES).status_code == 403
    assert support.get(USAGE).status_code == 403


def test_the_usage_log_charts_calls_per_day(staff):
    now = timezone.now().replace(hour=12)
    for days_ago, calls in ((0, 4), (1, 2), (3, 1), (40, 9)):
        ApiUsageLog.objects.bulk_create(
            ApiUsageLog(
                created_at=now - timedelta(days=days_ago),
                endpoint="/api/v1/licenses/validate/",
                method="POST",
                status_code=200,
                response_ms=1.0,
            )
            for _ in range(calls)
        )
    html = staff().get(USAGE).content.decode()
    bars = re.findall(r'title="(\d{4}-\d{2}-\d{2}): (\d+) calls"\s+style="[^"]*height:(\d+)%', html)
    day = lambda ago: f"{(now - timedelta(days=ago)).date():%Y-%m-%d}"  # noqa: E731
    assert bars == [
        (day(3), "1", "25"),
        (day(1), "2", "50"),
        (day(0), "4", "100"),
    ]  # the call of 40 days ago is outside the 30-day chart


def test_the_usage_log_says_when_nothing_was_logged(staff):
    assert "No calls logged yet." in staff().get(USAGE).content.decode()
