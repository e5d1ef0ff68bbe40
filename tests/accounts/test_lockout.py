"""Issue 14: the per-account login lockout.

The attack: 200 wrong passwords at one account in two minutes, none refused (a new
`X-Forwarded-For` each time reset the per-address limit). Whatever the address, failed logins
now count per email: past LOGIN_LOCKOUT_MAX_FAILURES within the window the email is locked, the
right password too gets 429 `account_locked` with Retry-After, on the API and on the admin's
login form, until the lock runs out or staff lift it. An unknown email is treated the same.
"""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent, LoginLockout
from accounts.roles import Role
from tests.concurrency import run_at_once
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _lockout_settings(settings):
    settings.LOGIN_LOCKOUT_MAX_FAILURES = 10
    settings.LOGIN_LOCKOUT_WINDOW_SECONDS = 900
    settings.LOGIN_LOCKOUT_SECONDS = 900


def login(email, password, address="198.51.100.7"):
    """A login from its own client and address, as an attacker rotating addresses sends it."""
    return APIClient(REMOTE_ADDR=address).post(
        LOGIN, {"email": email, "password": password}, format="json"
    )


def guess(email, n, password="wrong-guess"):
    return [login(email, f"{password}-{i}", f"203.0.113.{i + 1}") for i in range(n)]


def test_ten_wrong_passwords_from_ten_addresses_lock_the_account_even_for_the_right_one(
    make_user,
):
    user = make_user()
    assert [r.status_code for r in guess(user.email, 10)] == [401] * 10

    refused = login(user.email, PASSWORD, "192.0.2.99")  # the owner, from elsewhere

    assert refused.status_code == 429
    assert refused.json()["code"] == "account_locked"
    assert 0 < int(refused["Retry-After"]) <= 900
    assert "access" not in refused.json()


def test_the_lock_ends_by_itself_after_its_time(make_user):
    user = make_user()
    guess(user.email, 11)
    assert login(user.email, PASSWORD).status_code == 429
    with time_machine.travel(timezone.now() + timedelta(seconds=901)):
        assert login(user.email, PASSWORD).status_code == 200


def test_an_unknown_email_is_locked_like_a_known_one(make_user):
    known, unknown = make_user().email, "nobody-here@example.com"
    answers = {}
    for email in (known, unknown):
        answers[email] = [(r.status_code, r.json()["code"]) for r in guess(email, 12)]
    assert answers[known] == answers[unknown]
    assert answers[known][-1] == (429, "account_locked")


def test_a_right_password_is_no_failure(make_user):
    user = make_user()
    guess(user.email, 9)
    for _ in range(5):
        assert login(user.email, PASSWORD).status_code == 200
    assert guess(user.email, 1)[0].status_code == 401  # the 10th failure: still checked
    assert login(user.email, PASSWORD).status_code == 429  # past ten: locked


def test_failures_older_than_the_window_do_not_count(make_user):
    user = make_user()
    guess(user.email, 9)
    with time_machine.travel(timezone.now() + timedelta(seconds=901)):
        assert [r.status_code for r in guess(user.email, 10)] == [401] * 10
        assert login(user.email, PASSWORD).status_code == 429


def test_the_email_is_compared_whatever_its_case_and_spaces(make_user):
    make_user(email="trader@example.com")
    for n in range(10):
        login(f" TRADER@Example.com{' ' * (n % 2)}", "wrong")
    assert login("trader@example.com", PASSWORD).status_code == 429


def test_the_lock_is_audited_once(make_user):
    user = make_user()
    guess(user.email, 15)
    locks = AuditEvent.objects.filter(action="login.locked")
    assert locks.count() == 1
    assert locks.get().after["email"] == user.email


def test_the_admin_login_form_is_locked_too_even_with_the_right_password(make_user):
    staff = make_user(role=Role.SUPER_ADMIN)
    guess(staff.email, 10)

    response = Client(REMOTE_ADDR="192.0.2.50").post(
        "/admin/login/?next=/admin/", {"username": staff.email, "password": PASSWORD}
    )

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 900
    assert "locked" in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session


def test_wrong_passwords_on_the_admin_form_count_for_the_api_login(make_user):
    staff = make_user(role=Role.SUPER_ADMIN)
    for n in range(10):
        Client(REMOTE_ADDR=f"203.0.113.{n + 1}").post(
            "/admin/login/", {"username": staff.email, "password": "wrong"}
        )
    assert login(staff.email, PASSWORD).status_code == 429


def test_staff_unlock_in_the_admin_and_it_is_audited(client, make_user):
    user = make_user()
    guess(user.email, 11)
    admin = make_user(role=Role.SUPER_ADMIN)
    client.force_login(admin)

    response = client.post(
        "/admin/accounts/user/",
        {"action": "unlock_login", "_selected_action": [user.pk]},
    )

    assert response.status_code == 302
    assert login(user.email, PASSWORD).status_code == 200
    unlocked = AuditEvent.objects.get(action="login.unlocked")
    assert unlocked.actor == admin


def test_staff_without_the_right_cannot_unlock(client, make_user):
    user = make_user()
    guess(user.email, 11)
    client.force_login(make_user(role=Role.SUPPORT_AGENT))
    client.post("/admin/accounts/user/", {"action": "unlock_login", "_selected_action": [user.pk]})
    client.post(
        "/admin/accounts/loginlockout/",
        {
            "action": "unlock_selected",
            "_selected_action": [LoginLockout.objects.get(email=user.email).pk],
        },
    )
    assert login(user.email, PASSWORD).status_code == 429
    assert not AuditEvent.objects.filter(action="login.unlocked").exists()


def test_an_operator_unlocks_with_a_command(make_user, capsys):
    user = make_user()
    guess(user.email, 11)
    call_command("unlock_login", user.email.upper())
    assert "unlocked" in capsys.readouterr().out
    assert login(user.email, PASSWORD).status_code == 200
    assert AuditEvent.objects.get(action="login.unlocked").actor_label == "system"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_wrong_passwords_get_only_ten_checks(make_user):
    user = make_user()
    email = user.email

    results, errors = run_at_once(
        lambda n: login(email, f"wrong-{n}", f"203.0.113.{n + 1}").status_code, threads=20
    )

    assert errors == []
    assert sorted(results) == [401] * 10 + [429] * 10
    assert login(email, PASSWORD, "192.0.2.1").status_code == 429
