"""The admin's login form, limited against password guessing.

The API's login, refresh and sign-up are throttled by DRF (`AUTH_THROTTLE_RATE`); the admin's
form is a Django view DRF never sees. This middleware counts its failed logins per client
address in the cache (a failure: the form answered 200, shown again with an error; a success
redirects) and refuses the form's POSTs from an address past `ADMIN_LOGIN_MAX_FAILURES`
within `ADMIN_LOGIN_WINDOW_SECONDS` with 429 and Retry-After, whatever the password. Counting
only failures keeps staff who type their password right from ever meeting it.
"""

import math

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.urls import NoReverseMatch, reverse

CACHE_PREFIX = "admin-login-failures:"


class AdminLoginThrottleMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method != "POST" or request.path != login_path(request):
            return self.get_response(request)
        key = CACHE_PREFIX + (request.META.get("REMOTE_ADDR") or "unknown")
        window = settings.ADMIN_LOGIN_WINDOW_SECONDS
        if (cache.get(key) or 0) >= settings.ADMIN_LOGIN_MAX_FAILURES:
            minutes = math.ceil(window / 60)
            response = HttpResponse(
                f"Too many failed logins from your address. Try again in {minutes} minutes.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(window)
            return response
        response = self.get_response(request)
        if response.status_code == 200:  # the form again, with "please enter a correct..."
            cache.add(key, 0, timeout=window)  # the window starts at the first failure
            try:
                cache.incr(key)
            except ValueError:  # expired between the two calls: this failure starts anew
                cache.set(key, 1, timeout=window)
        return response


def login_path(request) -> str | None:
    """The admin's login path in the URLconf serving `request` (None: it has no admin)."""
    try:
        return reverse("admin:login", urlconf=getattr(request, "urlconf", None))
    except NoReverseMatch:
        return None
