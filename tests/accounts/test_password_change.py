"""`POST auth/password/`: the old password, a new one the validators accept, every other
login ended.

The old password is checked behind the same per-account lockout as a login (a stolen access
token must not become a password-guessing oracle) and the endpoint is throttled like the
login. A change revokes every refresh token the user holds, other devices' and the caller's
own, and answers the caller a fresh pair: a copy of any old refresh token is worthless.
"""

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent, TokenFamily, User
from accounts.services import api_key_create
from tests.concurrency import run_at_once
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/password/"
NEW = "an-Other-quite-long-pass-37"


@pytest.fixture(autouse=True)
def _lockout_settings(settings):
    settings.LOGIN_LOCKOUT_MAX_FAILURES = 10
    settings.LOGIN_LOCKOUT_WINDOW_SECONDS = 900
    settings.LOGIN_LOCKOUT_SECONDS = 900


def login(email, password=PASSWORD) -> APIClient:
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/", {"email": email, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    client.tokens = response.json()
    return client


def refresh(token: str) -> int:
    return (
        APIClient()
        .post("/api/v1/auth/token/refresh/", {"refresh": token}, format="json")
        .status_code
    )


def change(client, old=PASSWORD, new=NEW):
    return client.post(URL, {"old_password": old, "new_password": new}, format="json")


def test_a_password_change_ends_every_other_login_and_hands_back_a_fresh_pair(make_user):
    user = make_user()
    laptop, phone = login(user.email), login(user.email)

    response = change(laptop)

    assert response.status_code == 200
    fresh = response.json()
    assert refresh(phone.tokens["refresh"]) == 401
    assert refresh(laptop.tokens["refresh"]) == 401  # the caller's old token too
    assert refresh(fresh["refresh"]) == 200
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert login(user.email, NEW)
    assert (
        APIClient()
        .post("/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, format="json")
        .status_code
        == 401
    )
    assert set(
        TokenFamily.objects.filter(user=user, revoked_at__isnull=False).values_list(
            "revoked_reason", flat=True
        )
    ) == {"password"}


def test_a_password_change_is_audited_without_any_password(make_user):
    user = make_user()

    change(login(user.email))

    event = AuditEvent.objects.get(action="user.password_changed")
    assert event.object_id == str(user.pk)
    text = f"{event.before} {event.after} {event.reason}"
    assert PASSWORD not in text and NEW not in text


def test_a_wrong_old_password_is_a_400_and_changes_nothing(make_user):
    user = make_user()
    client = login(user.email)

    response = change(client, old="not-my-password")

    assert response.status_code == 400
    assert response.json()["code"] == "wrong_password"
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)
    assert refresh(client.tokens["refresh"]) == 200


def test_wrong_old_passwords_count_for_the_login_lockout(make_user, settings):
    settings.LOGIN_LOCKOUT_MAX_FAILURES = 3
    user = make_user()
    client = login(user.email)

    answers = [change(client, old=f"guess-{n}").status_code for n in range(3)]
    locked = change(client)  # the right one, now too late

    assert answers == [400, 400, 400]
    assert locked.status_code == 429
    assert locked.json()["code"] == "account_locked"
    assert int(locked["Retry-After"]) > 0
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_guesses_check_no_more_than_the_lockout_allows(make_user, settings):
    settings.LOGIN_LOCKOUT_MAX_FAILURES = 3
    user = make_user()
    client = login(user.email)
    access = client.tokens["access"]

    def guess(n):
        one = APIClient()
        one.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        return change(one, old=f"guess-{n}").status_code

    results, errors = run_at_once(guess, threads=8)

    assert errors == []
    assert sorted(results) == [400] * 3 + [429] * 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_two_changes_at_once_with_the_right_old_password_one_wins(make_user):
    user = make_user()
    access = login(user.email).tokens["access"]

    def change_to(n):
        one = APIClient()
        one.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        response = change(one, new=f"{NEW}-{n}")
        return response.status_code, response.json().get("code")

    results, errors = run_at_once(change_to, threads=4)

    assert errors == []
    assert sorted(results, key=str) == [(200, None)] + [(400, "wrong_password")] * 3
    assert AuditEvent.objects.filter(action="user.password_changed").count() == 1


@pytest.mark.parametrize(
    ("new", "why"),
    [("short1", "too short"), ("12345678901234", "entirely numeric"), ("password123", "common")],
)
def test_a_weak_new_password_is_a_400_naming_the_field(make_user, new, why):
    user = make_user()

    response = change(login(user.email), new=new)

    assert response.status_code == 400, why
    assert "new_password" in response.json()
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


def test_a_new_password_like_the_email_is_refused(make_user):
    user = make_user(email="maria.gonzalez@example.com")

    response = change(login(user.email), new="maria.gonzalez")

    assert response.status_code == 400
    assert "new_password" in response.json()


def test_the_same_password_again_is_no_change(make_user):
    user = make_user()

    response = change(login(user.email), new=PASSWORD)

    assert response.status_code == 400
    assert response.json()["code"] == "password_unchanged"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"old_password": PASSWORD},
        {"new_password": NEW},
        {"old_password": 5, "new_password": []},
    ],
)
def test_missing_or_malformed_fields_are_400s(make_user, body):
    response = login(make_user().email).post(URL, body, format="json")

    assert response.status_code == 400


def test_anonymous_callers_cannot_change_a_password(api):
    assert change(api).status_code == 401


def test_an_api_key_cannot_change_its_users_password(make_user):
    user = make_user()
    _, raw = api_key_create(user=user, name="integration")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")

    response = change(client)

    assert response.status_code == 403
    assert response.json()["code"] == "login_required"
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


def test_a_password_change_is_throttled_like_the_login(make_user, settings):
    # Past the lockout's reach (switched off here), the "auth" budget (30/min) still holds.
    settings.LOGIN_LOCKOUT_MAX_FAILURES = 0
    client = login(make_user().email)

    codes = [change(client, old=f"guess-{n}").status_code for n in range(31)]

    assert codes[:30] == [400] * 30
    assert codes[30] == 429
