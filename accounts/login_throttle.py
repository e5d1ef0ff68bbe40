"""The admin's login form, limited against password guessing.

The API's login, refresh and sign-up are throttled by DRF (`AUTH_THROTTLE_RATE`); the admin's
form is a Django view DRF never sees. This middleware limits its failed logins per client
address (`core.net.client_ip`) in the cache: past `ADMIN_LOGIN_MAX_FAILURES` within
`ADMIN_LOGIN_WINDOW_SECONDS` the form's POSTs answer 429 with Retry-After, whatever the
password.

Each POST takes its place in the count *before* its password is checked, with one atomic
increment, so concurrent guesses cannot all read "under the limit" and all be checked: of any
number sent at once, at most the limit reach the password check. A login that succeeds (the
form redirects) gives its place back, so staff who type their password right never meet the
limit.
"""

import contextlib
import math

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.urls import NoReverseMatch, reverse

from core.net import client_ip

CACHE_PREFIX = "admin-login-failures:"


def _take_place(key: str, window: int) -> int:
    """Count one more attempt for `key` and return the count, atomically."""
    cache.add(key, 0, timeout=window)  # the window starts at the first attempt
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls: this attempt starts anew
        cache.add(key, 0, timeout=window)
        return cache.incr(key)


def _give_back(key: str) -> None:
    with contextlib.suppress(ValueError):  # the window ended meanwhile: nothing to give back
        cache.decr(key)


def admin_login_limit_clear(*, address: str) -> bool:
    """Forget the failed admin logins counted for `address` (an operator's unlock)."""
    return bool(cache.delete(CACHE_PREFIX + address))


class AdminLoginThrottleMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method != "POST" or request.path != login_path(request):
            return self.get_response(request)
        key = CACHE_PREFIX + (client_ip(request) or "unknown")
        window = settings.ADMIN_LOGIN_WINDOW_SECONDS
        if _take_place(key, window) > settings.ADMIN_LOGIN_MAX_FAILURES:
            _give_back(key)  # a refused POST checked nothing: it is not a failure
            minutes = math.ceil(window / 60)
            response = HttpResponse(
                f"Too many failed logins from your address. Try again in {minutes} minutes.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(window)
            return response
        response = self.get_response(request)
        if response.status_code != 200:  # 200 is the form again, with "please enter a correct..."
            _give_back(key)
        return response


def login_path(request) -> str | None:
    """The admin's login path in the URLconf serving `request` (None: it has no admin)."""
    try:
        return reverse("admin:login", urlconf=getattr(request, "urlconf", None))
    except NoReverseMatch:
        return None
