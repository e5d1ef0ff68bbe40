"""The client address every limit uses, and the attacks on it: a spoofed X-Forwarded-For
must not reset a limit, and concurrent guesses must not outrun the admin login's count."""

import io
import os
import subprocess
import sys

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import Client, RequestFactory

from core.net import client_ip
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db


def address(remote: str | None, forwarded: str | None = None) -> str | None:
    meta = {} if remote is None else {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/", **meta)
    if remote is None:
        request.META.pop("REMOTE_ADDR", None)
    return client_ip(request)


# --- Which address is the client's ----------------------------------------------------------


def test_with_no_trusted_proxy_the_socket_is_the_client_whatever_the_header_says(settings):
    settings.TRUSTED_PROXIES = []
    assert address("203.0.113.7", "1.2.3.4") == "203.0.113.7"


def test_a_header_from_an_untrusted_socket_is_ignored(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert address("203.0.113.7", "1.2.3.4") == "203.0.113.7"


def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    assert address("10.0.0.5", "198.51.100.9") == "198.51.100.9"


def test_what_the_client_wrote_left_of_the_proxies_entries_is_ignored(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # The client sent "X-Forwarded-For: 1.2.3.4"; the edge proxy appended the real address,
    # an inner proxy appended the edge's.
    assert address("10.0.0.2", "1.2.3.4, 198.51.100.9, 10.0.0.1") == "198.51.100.9"


def test_garbage_in_the_chain_stops_at_the_last_proxy_that_vouched(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert address("10.0.0.2", "198.51.100.9, not-an-ip") == "10.0.0.2"
    assert address("10.0.0.2", "") == "10.0.0.2"


def test_ports_brackets_and_mapped_addresses_are_read_as_addresses(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert address("10.0.0.2", "198.51.100.9:51234") == "198.51.100.9"
    assert address("10.0.0.2", "[2001:db8::1]:443") == "2001:db8::1"
    assert address("::ffff:203.0.113.7") == "203.0.113.7"


def test_a_request_with_no_socket_address_has_none():
    assert address(None) is None


def test_a_trusted_proxies_entry_that_is_no_address_refuses_to_start():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env["TRUSTED_PROXIES"] = "10.0.0.0/8,proxy.internal"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr and "proxy.internal" in result.stderr


# --- The API's login, refresh and sign-up limits --------------------------------------------


def test_a_new_spoofed_forwarded_address_per_guess_does_not_escape_the_login_limit(api):
    # The default AUTH_THROTTLE_RATE is 30/min per client address.
    statuses = [
        api.post(
            "/api/v1/auth/token/",
            {"email": f"guess-{n}@example.com", "password": "wrong"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(40)
    ]
    assert statuses[:30] == [401] * 30
    assert set(statuses[30:]) == {429}


def test_the_refresh_and_sign_up_limits_are_not_escaped_with_a_spoofed_address_either(api):
    refresh = [
        api.post(
            "/api/v1/auth/token/refresh/",
            {"refresh": "not-a-token"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
        for n in range(31)
    ]
    assert refresh[-1].status_code == 429
    assert "Retry-After" in refresh[-1]
    signup = api.post(
        "/api/v1/auth/register/",
        {"email": "new@example.com", "password": "a-long-enough-passphrase-9"},
        format="json",
        HTTP_X_FORWARDED_FOR="192.0.2.200",
    )
    assert signup.status_code == 429  # the same address's budget: refresh spent it


def test_behind_a_trusted_proxy_each_client_has_its_own_login_budget(api, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's socket address
    for n in range(30):
        api.post(
            "/api/v1/auth/token/",
            {"email": f"guess-{n}@example.com", "password": "wrong"},
            format="json",
            HTTP_X_FORWARDED_FOR="198.51.100.1",
        )
    other = api.post(
        "/api/v1/auth/token/",
        {"email": "someone@example.com", "password": "wrong"},
        format="json",
        HTTP_X_FORWARDED_FOR="198.51.100.2",
    )
    spent = api.post(
        "/api/v1/auth/token/",
        {"email": "someone@example.com", "password": "wrong"},
        format="json",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
    )
    assert other.status_code == 401
    assert spent.status_code == 429


# --- The admin's login form -----------------------------------------------------------------


def admin_guess(n: int, ip: str = "203.0.113.7", forwarded: str | None = None) -> int:
    extra = {"REMOTE_ADDR": ip}
    if forwarded:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return (
        Client()
        .post(
            "/admin/login/?next=/admin/",
            {"username": f"guess-{n}@example.com", "password": f"guess-{n}"},
            **extra,
        )
        .status_code
    )


def test_the_admin_login_limit_ignores_a_spoofed_forwarded_address(settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    statuses = [admin_guess(n, forwarded=f"198.51.100.{n}") for n in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


class SlowHasher(PBKDF2PasswordHasher):
    """A real password check's cost, so concurrent guesses overlap while they are checked."""

    iterations = 100_000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_wrong_admin_passwords_check_at_most_the_limit(settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 10
    settings.PASSWORD_HASHERS = ["tests.test_client_address.SlowHasher"]

    statuses, errors = run_at_once(admin_guess, threads=20)

    assert errors == []
    # 200 is the form shown again after a password was checked and found wrong.
    assert sorted(statuses) == [200] * 10 + [429] * 10
    # The count is exactly the failures: the next guess is refused, unchecked.
    assert admin_guess(99) == 429


def test_an_operator_lifts_the_admin_login_limit_of_an_address(settings):
    from django.core.management import call_command

    from accounts.models import AuditEvent

    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    assert [admin_guess(n) for n in range(3)] == [200, 200, 429]

    call_command("unlock_login", "--address", "203.0.113.7", stdout=io.StringIO())

    assert admin_guess(9) == 200  # checked again (and wrong)
    assert AuditEvent.objects.filter(
        action="login.address_unlocked", object_id="203.0.113.7"
    ).exists()


def test_unlocking_an_address_that_is_no_address_is_refused():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="not an IP address"):
        call_command("unlock_login", "--address", "10.0.0.7; drop")
