"""The staff screens: read-only deliveries with their attempt log, counts and success rate;
never the payload, the waiting link, a token or its hash."""

import pytest
from django.test import Client

from accounts.roles import Role
from delivery.models import Delivery
from delivery.services import delivery_reveal, delivery_send_failed, delivery_view

from .conftest import SECRET, token_of

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/delivery/delivery/"


@pytest.fixture
def staff(make_user):
    def login(role: Role) -> Client:
        client = Client()
        client.force_login(make_user(role=role))
        return client

    return login


@pytest.fixture
def deliveries(create):
    revealed = create(purpose="demo.account:1")
    delivery_view(token=token_of(revealed), ip="203.0.113.4", user_agent="TelegramBot")
    delivery_reveal(token=token_of(revealed), ip="203.0.113.5", user_agent="Firefox")
    waiting = create(method="telegram", contact="5550001", purpose="demo.account:2")
    failed = create(method="email", contact="a@example.com", purpose="demo.account:3")
    delivery_send_failed(delivery_id=failed.delivery.pk, error="SMTP 550")
    return revealed, waiting, failed


def assert_no_secrets(html: str, results) -> None:
    assert SECRET not in html
    assert "enc:v1" not in html
    assert "t1:" not in html
    for result in results:
        assert token_of(result) not in html
        assert result.delivery.token_hash not in html


def test_the_list_shows_counts_and_success_rate_by_method(staff, deliveries):
    response = staff(Role.SUPPORT_AGENT).get(CHANGELIST)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Deliveries by method and status" in html
    # api: 1 carried of 1 tried; email: 0 of 1; all: 1 of 2 (the waiting one is not tried yet).
    assert "<td>100.0%</td>" in html
    assert "<td>0.0%</td>" in html
    assert "<td><strong>50.0%</strong></td>" in html
    assert "demo.account:2" in html
    assert_no_secrets(html, deliveries)


def test_a_delivery_page_shows_its_attempts_and_no_secret(staff, deliveries):
    revealed = deliveries[0]

    response = staff(Role.SUPER_ADMIN).get(f"{CHANGELIST}{revealed.delivery.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Attempts (every view and reveal of the link)" in html
    assert "203.0.113.4" in html and "203.0.113.5" in html
    assert "TelegramBot" in html
    assert 'name="payload"' not in html and "pending_link" not in html
    assert_no_secrets(html, deliveries)


def test_deliveries_cannot_be_added_changed_or_deleted(staff, deliveries):
    admin = staff(Role.SUPER_ADMIN)
    pk = deliveries[1].delivery.pk

    assert admin.get(f"{CHANGELIST}add/").status_code == 403
    assert admin.post(f"{CHANGELIST}{pk}/change/", {"status": "sent"}).status_code == 403
    assert admin.post(f"{CHANGELIST}{pk}/delete/", {"post": "yes"}).status_code == 403
    assert Delivery.objects.get(pk=pk).status == "pending"


def test_the_attempt_log_is_its_own_read_only_list(staff, deliveries):
    response = staff(Role.SUPPORT_AGENT).get(
        "/admin/delivery/deliveryattempt/?is_preview_bot__exact=1"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "TelegramBot" in html and "Firefox" not in html
    assert_no_secrets(html, deliveries)


def test_roles_without_delivery_access_do_not_see_deliveries(staff, deliveries):
    assert staff(Role.CAMPAIGN_MANAGER).get(CHANGELIST).status_code == 403
