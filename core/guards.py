"""The request-shape guard: refuses, before anything else reads it, a request whose path,
query string or headers could not be stored or logged.

PostgreSQL text refuses NUL, so `GET /api/v1/x%00y/` once made the usage log's bulk insert
fail for a whole flush window; a NUL in a path parameter, a query value or a header that
reaches a lookup is a 500. This middleware, placed first, answers instead:

- 400 `bad_path`: a control character (C0, DEL or C1: `%00`, `%0A`, `%7F`...) in the decoded
  path, or a path whose bytes are not UTF-8 (`%FF`; seen where the server passes the raw
  request target on: gunicorn, uWSGI, mod_wsgi, ASGI servers);
- 400 `bad_query`: a NUL in the decoded query string;
- 400 `bad_header`: a C0 control character other than tab, or DEL, in a header value;
- 431 `header_too_large`: one header value longer than API_MAX_HEADER_BYTES (default 8190,
  what gunicorn allows; a direct hit on the app server must not do better).

Every URL, not just the API: the admin, the one-time link pages and the probes too. The
answer is JSON `{"detail", "code"}`, like every API error.
"""

import re
from urllib.parse import unquote_to_bytes, urlsplit

from django.conf import settings
from django.http import JsonResponse

DEFAULT_MAX_HEADER_BYTES = 8190
_PATH_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_HEADER_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def _refuse(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def raw_path(request) -> bytes | None:
    """The path as the client sent it, percent-decoded to bytes, when the server tells it:
    gunicorn's RAW_URI, uWSGI's and mod_wsgi's REQUEST_URI, ASGI's raw_path. Django itself
    re-percent-encodes bytes that are not UTF-8 (`%FF` stays the text "%FF"), so only the
    raw target shows them."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and isinstance(scope.get("raw_path"), bytes):
        return unquote_to_bytes(scope["raw_path"].split(b"?", 1)[0])
    target = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if not isinstance(target, str) or not target:
        return None
    path = urlsplit(target).path if "://" in target[:10] else target.split("?", 1)[0]
    return unquote_to_bytes(path.encode("latin-1", "replace"))


def path_problem(request) -> str | None:
    """Why the request's path cannot be taken, or None."""
    if _PATH_CONTROL.search(request.path):
        return "The path contains a control character."
    raw = raw_path(request)
    if raw is not None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "The path is not valid UTF-8."
        if _PATH_CONTROL.search(text):
            return "The path contains a control character."
    return None


def query_problem(request) -> str | None:
    query = request.META.get("QUERY_STRING", "")
    if "\x00" in query or b"\x00" in unquote_to_bytes(query):
        return "The query string contains a NUL character."
    return None


class RequestGuardMiddleware:
    """Refuse what no view should see (see the module docstring); first in MIDDLEWARE."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refusal = self.check(request)
        return refusal if refusal is not None else self.get_response(request)

    def check(self, request) -> JsonResponse | None:
        problem = path_problem(request)
        if problem:
            return _refuse(400, "bad_path", problem)
        problem = query_problem(request)
        if problem:
            return _refuse(400, "bad_query", problem)
        limit = getattr(settings, "API_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES)
        for name, value in request.META.items():
            if not (name.startswith("HTTP_") or name in ("CONTENT_TYPE", "CONTENT_LENGTH")):
                continue
            if not isinstance(value, str):
                continue
            header = name.removeprefix("HTTP_").replace("_", "-").title()
            if len(value) > limit:
                return _refuse(
                    431, "header_too_large", f"The {header} header is longer than {limit}."
                )
            if _HEADER_CONTROL.search(value):
                return _refuse(400, "bad_header", f"The {header} header holds a control char.")
        return None
