"""Issue 14: usernames are unique whatever their case, and no client calls itself "admin"."""

import pytest
from django.db import IntegrityError, connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import username_is_reserved
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
ME = "/api/v1/auth/me/"


def register(api, username, email="new@client.io"):
    return api.post(
        REGISTER,
        {"email": email, "password": "gold-Falcon-river-72", "username": username},
        format="json",
    )


@pytest.mark.parametrize(
    "name",
    [
        "admin",
        "Admin",
        "ADMIN",
        "root",
        "support",
        "Staff",
        "BrokerDesk",
        "the.admin",
        "Support Team",
        "support_team",
        "admin1",
        "root_01",
        "adm1n",
        "r00t",
        "\u0430dmin",  # a Cyrillic "a"
        "\uff21\uff24\uff2d\uff29\uff2e",  # full-width "ADMIN"
        "brokerdesk-official",
    ],
)
def test_a_client_cannot_take_a_reserved_name(api, as_user, make_user, name):
    response = register(api, name)
    assert response.status_code == 400
    assert response.json()["code"] == "username_reserved"
    assert not User.objects.filter(email="new@client.io").exists()

    me = as_user(make_user()).patch(ME, {"username": name}, format="json")
    assert me.status_code == 400
    assert me.json()["code"] == "username_reserved"


@pytest.mark.parametrize("name", ["staffan", "rootbeer", "admiral", "supporter", "Jane Doe"])
def test_ordinary_names_that_only_resemble_one_are_fine(name):
    assert not username_is_reserved(name)


def test_a_taken_name_in_another_case_is_refused_on_register(api, make_user):
    make_user(username="Trader")
    response = register(api, "tRADER")
    assert response.status_code == 400
    assert response.json()["code"] == "username_taken"


def test_a_taken_name_in_another_case_is_refused_on_patch_me(make_user, as_user):
    make_user(username="Goldfinger")
    me = make_user(username="someone")
    response = as_user(me).patch(ME, {"username": "GOLDFINGER"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "username_taken"
    me.refresh_from_db()
    assert me.username == "someone"


def test_keeping_ones_own_name_or_changing_its_case_is_fine(make_user, as_user):
    me = make_user(username="trader")
    assert as_user(me).patch(ME, {"username": "Trader"}, format="json").status_code == 200
    assert as_user(me).patch(ME, {"username": "Trader"}, format="json").status_code == 200


def test_blank_usernames_are_not_unique(api, make_user):
    make_user(username="")
    assert register(api, "").status_code == 201


def test_the_database_refuses_a_duplicate_in_another_case(make_user):
    make_user(username="Bob")
    with pytest.raises(IntegrityError):
        User.objects.create_user(email="other@example.com", password="x", username="bob")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_five_clients_claiming_one_name_at_once_leave_one_owner(make_user):
    from rest_framework_simplejwt.tokens import RefreshToken

    users = [make_user() for _ in range(5)]
    tokens = [str(RefreshToken.for_user(u).access_token) for u in users]

    def claim(n):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[n]}")
        response = api.patch(ME, {"username": "Goldfinger"}, format="json")
        return response.status_code, response.json().get("code")

    results, errors = run_at_once(claim, threads=5)

    assert errors == []
    assert sorted(results, key=str) == [(200, None)] + [(400, "username_taken")] * 4
    assert User.objects.filter(username__iexact="goldfinger").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_migration_renames_existing_duplicates_instead_of_failing():
    executor = MigrationExecutor(connection)
    before = [("accounts", "0003_monitor")]
    leaf = executor.loader.graph.leaf_nodes("accounts")
    try:
        executor.migrate(before)
        old = MigrationExecutor(connection).loader.project_state(before).apps
        OldUser = old.get_model("accounts", "User")
        OldApiKey = old.get_model("accounts", "ApiKey")
        first = OldUser.objects.create(email="a@example.com", username="Trader", password="!")
        second = OldUser.objects.create(email="b@example.com", username="trader", password="!")
        third = OldUser.objects.create(email="c@example.com", username="TRADER", password="!")
        OldUser.objects.create(email="d@example.com", username=f"trader-{second.pk}", password="!")
        OldUser.objects.create(email="e@example.com", username="", password="!")
        OldUser.objects.create(email="f@example.com", username="", password="!")
        key = OldApiKey.objects.create(user=first, name="old", prefix="abc", secret_hash="x")

        MigrationExecutor(connection).migrate(leaf)
    finally:
        MigrationExecutor(connection).migrate(leaf)

    names = dict(User.objects.values_list("email", "username"))
    assert names["a@example.com"] == "Trader"  # the first to join keeps it
    assert len({name.lower() for name in names.values() if name}) == 4
    assert names["b@example.com"] != names["d@example.com"]
    assert names["c@example.com"].lower().startswith("trader-")
    assert User.objects.get(pk=third.pk).email == "c@example.com"
    from accounts.models import ApiKey

    assert ApiKey.objects.get(pk=key.pk).scopes == []  # existing keys: no scope
