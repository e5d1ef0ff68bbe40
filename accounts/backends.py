"""The one authentication backend: email and password, behind the per-account lockout.

The API's login and the admin's login form both go through Django's `authenticate()`, so the
lockout lives here once for both. A locked email is refused before its password is checked;
the backend raises `PermissionDenied` (`authenticate()` then answers None at once) and leaves
the seconds left on the request (`LOCKED_FOR`) for the view to say so, with Retry-After.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from core.net import client_ip

LOCKED_FOR = "login_locked_for"


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not username or password is None:
            return None
        from accounts.services import login_attempt_start, login_attempt_succeeded

        ip = client_ip(request) if request is not None else None
        locked_for = login_attempt_start(email=str(username), ip=ip)
        if locked_for:
            if request is not None:
                setattr(request, LOCKED_FOR, locked_for)
            raise PermissionDenied("locked")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            login_attempt_succeeded(email=str(username))
        return user


def locked_for(request) -> int:
    """The seconds the email of this request's failed login stays locked (0: not locked)."""
    return int(getattr(request, LOCKED_FOR, 0) or 0)
