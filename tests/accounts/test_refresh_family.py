"""Issue 14: one refresh token forked into many sessions.

The attack: ten concurrent `auth/token/refresh/` calls with the same token all succeeded, and
nine of the ten new tokens refreshed again, so a stolen refresh token could not be contained by
rotation or logout. Now exactly one refresh of a token succeeds (the others get 401), a rotated
token presented again later revokes every token of its login, and logout does the same.
"""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import TokenFamily
from tests.concurrency import run_at_once
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"


@pytest.fixture(autouse=True)
def _grace(settings):
    settings.JWT_REFRESH_REUSE_GRACE_SECONDS = 10


def login(user) -> dict:
    response = APIClient().post(
        "/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def refresh(token: str):
    return APIClient().post(REFRESH, {"refresh": token}, format="json")


def logout(token: str):
    return APIClient().post(LOGOUT, {"refresh": token}, format="json")


def later(seconds: int):
    return time_machine.travel(timezone.now() + timedelta(seconds=seconds))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_refreshes_of_one_token_let_exactly_one_through(make_user):
    stolen = login(make_user())["refresh"]

    results, errors = run_at_once(lambda n: refresh(stolen), threads=10)

    assert errors == []
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [401] * 9
    losers = [r for r in results if r.status_code == 401]
    assert {r.json()["code"] for r in losers} == {"token_not_valid"}
    assert all("refresh" not in r.json() for r in losers)
    (winner,) = [r.json() for r in results if r.status_code == 200]
    # The winner's new token goes on; the family was not revoked by the losers' race.
    assert refresh(winner["refresh"]).status_code == 200


def test_a_rotated_token_presented_again_later_ends_the_whole_login(make_user):
    first = login(make_user())["refresh"]
    second = refresh(first).json()["refresh"]

    with later(11):
        replay = refresh(first)  # the thief (or the owner) presents the old token again
        assert replay.status_code == 401
        assert replay.json()["code"] == "token_not_valid"
        assert refresh(second).status_code == 401  # the other copy is dead too
    family = TokenFamily.objects.get()
    assert family.revoked_reason == TokenFamily.Reason.REUSE


def test_a_replay_within_the_grace_is_refused_but_ends_nothing(make_user):
    first = login(make_user())["refresh"]
    second = refresh(first).json()["refresh"]
    assert refresh(first).status_code == 401
    assert refresh(second).status_code == 200


def test_logout_ends_every_token_that_descends_from_the_login(make_user):
    user = make_user()
    root = login(user)["refresh"]
    child = refresh(root).json()["refresh"]
    grandchild = refresh(child).json()["refresh"]
    other_login = login(user)["refresh"]  # another device

    assert logout(child).status_code == 205  # any member of the family ends it

    assert refresh(grandchild).status_code == 401
    assert refresh(child).status_code == 401
    family = TokenFamily.objects.get(key=RefreshToken(root, verify=False)["jti"])
    unblacklisted = OutstandingToken.objects.filter(
        family_member__family=family, blacklistedtoken__isnull=True
    )
    assert family.revoked_at is not None and not unblacklisted.exists()
    assert refresh(other_login).status_code == 200  # the other device stays logged in


def test_logout_twice_is_harmless(make_user):
    token = login(make_user())["refresh"]
    assert logout(token).status_code == 205
    assert logout(token).status_code == 205


def test_a_forged_or_garbage_token_is_refused_with_401(make_user):
    token = login(make_user())["refresh"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "garbage"):
        assert refresh(bad).status_code == 401
        assert logout(bad).status_code == 401


def test_an_access_token_is_no_refresh_token(make_user):
    access = login(make_user())["access"]
    assert refresh(access).status_code == 401


def test_a_token_from_before_families_rotates_and_starts_its_own(make_user):
    user = make_user()
    old = str(RefreshToken.for_user(user))  # no `fam` claim
    new = refresh(old).json()["refresh"]
    assert RefreshToken(new, verify=False)["fam"] == RefreshToken(old, verify=False)["jti"]
    assert logout(new).status_code == 205
    assert refresh(old).status_code == 401


def test_a_deactivated_user_cannot_refresh(make_user):
    user = make_user()
    token = login(user)["refresh"]
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert refresh(token).status_code == 401


def test_registration_tokens_start_a_family(api):
    body = api.post(
        "/api/v1/auth/register/",
        {"email": "fam@example.com", "password": "gold-Falcon-river-72"},
        format="json",
    ).json()
    assert RefreshToken(body["refresh"], verify=False)["fam"] == TokenFamily.objects.get().key
    assert refresh(body["refresh"]).status_code == 200


def test_the_database_keeps_no_usable_token(make_user):
    token = login(make_user())["refresh"]
    assert not OutstandingToken.objects.filter(token=token).exists()
    assert OutstandingToken.objects.get().token.startswith("sha256:")
