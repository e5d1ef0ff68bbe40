"""JWT login, refresh with rotation and blacklist, logout, registration, auth/me."""

import pytest

from accounts.models import AuditEvent, User
from accounts.roles import Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def login(api, email, password=PASSWORD):
    return api.post("/api/v1/auth/token/", {"email": email, "password": password}, format="json")


def test_a_user_logs_in_with_email_and_password_and_gets_a_token_pair(api, make_user):
    user = make_user()
    response = login(api, user.email)
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert api.get("/api/v1/auth/me/").json()["email"] == user.email


def test_login_ignores_the_case_of_the_email(api, make_user):
    user = make_user(email="Trader@Example.com")
    assert user.email == "trader@example.com"
    assert login(api, "TRADER@example.COM").status_code == 200


def test_a_wrong_password_gets_401_with_a_code(api, make_user):
    user = make_user()
    response = login(api, user.email, "not-the-password")
    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


def test_a_deactivated_user_cannot_log_in(api, make_user):
    user = make_user(is_active=False)
    assert login(api, user.email).status_code == 401


def test_refresh_rotates_and_the_old_refresh_token_is_refused_afterwards(api, make_user):
    tokens = login(api, make_user().email).json()
    first = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert first.status_code == 200
    assert first.json()["refresh"] != tokens["refresh"]
    again = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401
    assert again.json()["code"] == "token_not_valid"


def test_logout_blacklists_the_refresh_token(api, make_user):
    tokens = login(api, make_user().email).json()
    out = api.post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}, format="json")
    assert out.status_code == 205
    refused = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refused.status_code == 401


def test_logout_with_a_garbage_token_is_refused_not_a_500(api):
    response = api.post("/api/v1/auth/logout/", {"refresh": "garbage"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_registration_creates_a_client_and_logs_it_in(api):
    response = api.post(
        "/api/v1/auth/register/",
        {"email": "New@Client.io", "password": "gold-Falcon-river-72", "username": "newbie"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new@client.io"
    assert {"id", "access", "refresh"} <= set(body)
    user = User.objects.get(pk=body["id"])
    assert not user.is_staff
    assert AuditEvent.objects.filter(action="user.registered", object_id=str(user.pk)).exists()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    me = api.get("/api/v1/auth/me/").json()
    assert me == {
        "id": user.pk,
        "email": "new@client.io",
        "username": "newbie",
        "roles": [],
        "is_staff": False,
    }


@pytest.mark.parametrize("password", ["short", "12345678901234", "password123", "newclient-io1"])
def test_registration_rejects_weak_passwords_with_400(api, password):
    response = api.post(
        "/api/v1/auth/register/", {"email": "newclient@io.io", "password": password}, format="json"
    )
    assert response.status_code == 400
    assert "password" in response.json()
    assert not User.objects.filter(email="newclient@io.io").exists()


def test_registration_rejects_a_taken_email_whatever_its_case_with_400(api, make_user):
    make_user(email="taken@example.com")
    response = api.post(
        "/api/v1/auth/register/",
        {"email": "TAKEN@example.com", "password": "gold-Falcon-river-72"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["email"] == ["An account with this email already exists."]


def test_registration_rejects_a_malformed_email_with_400(api):
    response = api.post(
        "/api/v1/auth/register/",
        {"email": "not-an-email", "password": "gold-Falcon-river-72"},
        format="json",
    )
    assert response.status_code == 400
    assert "email" in response.json()


def test_me_shows_staff_roles(make_user, as_user):
    user = make_user(role=Role.SUPPORT_AGENT)
    body = as_user(user).get("/api/v1/auth/me/").json()
    assert body["roles"] == ["Support Agent"]
    assert body["is_staff"] is True


def test_me_patch_changes_the_username(make_user, as_user):
    user = make_user()
    response = as_user(user).patch("/api/v1/auth/me/", {"username": "renamed"}, format="json")
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.username == response.json()["username"] == "renamed"


def test_me_patch_with_another_email_is_refused_and_changes_nothing(make_user, as_user):
    """What was seen: 200, and the email (and everything else) stayed as it was."""
    user = make_user(username="before")
    response = as_user(user).patch(
        "/api/v1/auth/me/", {"username": "renamed", "email": "new@example.com"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "email_change_unsupported"
    user.refresh_from_db()
    assert (user.username, user.email) == ("before", user.email)
    assert user.email != "new@example.com"
    assert not AuditEvent.objects.filter(action="user.updated").exists()


def test_me_patch_may_repeat_the_current_email_whatever_its_case(make_user, as_user):
    # A client sending back what GET answered, with the name changed, is no email change.
    user = make_user()
    body = {"email": user.email.upper(), "username": "renamed"}
    response = as_user(user).patch("/api/v1/auth/me/", body, format="json")
    assert response.status_code == 200
    assert response.json()["username"] == "renamed"


@pytest.mark.parametrize("body", [{"email": "not-an-email"}, {"email": ""}, {"email": 5}])
def test_me_patch_with_a_malformed_email_is_a_400(make_user, as_user, body):
    response = as_user(make_user()).patch("/api/v1/auth/me/", body, format="json")
    assert response.status_code == 400


def test_me_delete_deactivates_the_caller_and_revokes_their_refresh_tokens(api, make_user):
    user = make_user()
    tokens = login(api, user.email).json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api.delete("/api/v1/auth/me/").status_code == 204
    user.refresh_from_db()
    assert not user.is_active
    api.credentials()
    refused = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refused.status_code == 401


def test_me_without_credentials_is_401(api):
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_login_is_throttled_per_address(api, make_user, settings):
    # A different email each time: the per-account lockout never meets any of them.
    statuses = [login(api, f"guess-{n}@example.com", "wrong").status_code for n in range(31)]
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429
