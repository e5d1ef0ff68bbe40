"""One place where errors become HTTP answers: `{"detail": "...", "code": "..."}`.

Domain errors carry their own status and code; a fault of an outside server is the outside's
(502/503 with a code), never a 500; DRF's own errors keep their shape and gain a `code`. A
database that refuses connections (or drops one mid-request) is a 503 `database_unavailable`
with `Retry-After` on every path, API or not, DEBUG on or off: never the debug page.
"""

import logging
import sys
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils.module_loading import import_string
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError, RateLimitedError
from core.parsers import TooLarge

logger = logging.getLogger(__name__)

# What a database that is down, full ("too many clients") or restarting raises, wrapped by
# Django whatever the driver; also SQLite's "database is locked" past its timeout. SQLite
# files its schema mistakes under OperationalError too: those are bugs, left to be 500s.
DATABASE_ERRORS = (OperationalError, InterfaceError)
_SQLITE_SCHEMA_ERRORS = ("no such table", "no such column", "syntax error")
DATABASE_RETRY_AFTER_SECONDS = 5


@lru_cache(maxsize=8)
def _error_class(path: str) -> type[BaseException]:
    return import_string(path)


def outside_errors() -> tuple[type[BaseException], type[BaseException]]:
    """The outside servers' error base and its worth-retrying subclass.

    They live in `gateways`, beside core on floor 0, so core names them by dotted path in
    settings (`OUTSIDE_ERROR`, `OUTSIDE_TRANSIENT_ERROR`) instead of importing them.
    """
    return _error_class(settings.OUTSIDE_ERROR), _error_class(settings.OUTSIDE_TRANSIENT_ERROR)


def is_database_unavailable(exc: BaseException | None) -> bool:
    """Is this the database not answering (worth retrying), rather than a bug?"""
    if not isinstance(exc, DATABASE_ERRORS):
        return False
    message = str(exc)
    return not any(marker in message for marker in _SQLITE_SCHEMA_ERRORS)


def _database_unavailable(exc: BaseException) -> dict:
    logger.warning("database unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
    return {
        "detail": "The database did not answer; try again shortly.",
        "code": "database_unavailable",
    }


def database_unavailable_response(exc: BaseException) -> JsonResponse:
    response = JsonResponse(_database_unavailable(exc), status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """503 `database_unavailable` instead of a 500 (or the debug page) for a database error.

    A view's error arrives in `process_exception`. One raised by a middleware never reaches
    it (Django turns it into a 500 on the spot), so the `got_request_exception` receiver below
    marks the request and the 500 is replaced on its way out; placed near the top of
    MIDDLEWARE, this sees the answer of every middleware under it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        exc = getattr(request, "_database_error", None)
        if exc is None or response.status_code != 500:
            return response
        replaced = database_unavailable_response(exc)
        for header, value in response.headers.items():  # keep what inner middleware set
            if header.lower() not in {"content-type", "content-length", "retry-after"}:
                replaced.headers.setdefault(header, value)
        return replaced

    def process_exception(self, request, exception):
        if is_database_unavailable(exception):
            return database_unavailable_response(exception)
        return None


def _mark_database_error(sender, request=None, **kwargs):
    exc = sys.exc_info()[1]
    if request is not None and is_database_unavailable(exc):
        request._database_error = exc


got_request_exception.connect(_mark_database_error, dispatch_uid="core.database_unavailable")


def exception_handler(exc, context):
    # Django's own body limits, met while DRF reads the body: JSON with a code, not HTML.
    if isinstance(exc, RequestDataTooBig):
        exc = TooLarge()
    elif isinstance(exc, TooManyFieldsSent):
        exc = exceptions.ParseError("Too many form fields.", code="too_many_fields")
    if is_database_unavailable(exc):
        return Response(
            _database_unavailable(exc),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, ApplicationError):
        response = Response(
            {"detail": exc.detail, "code": exc.code, **exc.extra}, status=exc.status_code
        )
        if isinstance(exc, RateLimitedError):
            response["Retry-After"] = str(exc.retry_after)
        return response
    outside_error, transient_error = outside_errors()
    if isinstance(exc, outside_error):
        transient = isinstance(exc, transient_error)
        logger.warning("gateway error reached a view", extra={"error": str(exc)})
        response = Response(
            {
                "detail": "An outside server did not answer; try again shortly."
                if transient
                else "An outside server refused the operation.",
                "code": "gateway_unavailable" if transient else "gateway_error",
            },
            status=status.HTTP_503_SERVICE_UNAVAILABLE
            if transient
            else status.HTTP_502_BAD_GATEWAY,
        )
        if transient:
            response["Retry-After"] = "5"
        return response

    # Django's own 404/403 get DRF's codes, as DRF's handler converts them.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*(exc.args or ()))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*(exc.args or ()))
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else None
        if isinstance(codes, dict):
            codes = codes.get("detail")
        response.data.setdefault("code", codes if isinstance(codes, str) else "error")
    return response


def page_not_found(request, exception):
    """A path under /api/ that names no endpoint answers like every API 404 (JSON with a
    code); any other path gets Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)
