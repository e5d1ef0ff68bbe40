"""`/d/<token>`: the page a person opens. Works without JavaScript.

GET shows a Reveal button and reveals nothing (link previews, mail scanners and crawlers burn
nothing); POST (the button, to the same address) reveals once. Every answer is private: not
stored by any cache, not indexed, and the token-bearing path is kept out of the request log.
"""

import json
import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods

from core.errors import ApplicationError, RateLimitedError
from core.net import client_ip
from delivery.ratelimit import rate_limit_hit
from delivery.services import delivery_reveal, delivery_view

logger = logging.getLogger("delivery")

HEADINGS = {
    403: "Your browser did not send the form's security cookie",
    404: "Link not found",
    410: "This link no longer works",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}
DATABASE_RETRY_AFTER_SECONDS = 5
# The page's only style is inline in its own <style>; it has no script.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _private(response, *, referrer_policy: str = "no-referrer"):
    add_never_cache_headers(response)  # Cache-Control: no-store, no-cache, private, max-age=0
    response["Pragma"] = "no-cache"
    response["Referrer-Policy"] = referrer_policy
    response["X-Robots-Tag"] = "noindex, nofollow, noarchive"
    # No script at all, nothing loaded from elsewhere, no framing, the form posts here only.
    response["Content-Security-Policy"] = CSP
    # The path holds the token: django.request logs every 4xx with its path; not this one.
    response._has_been_logged = True
    return response


def _unavailable(request, status: int, detail: str, *, retry_after: int | None = None):
    context: dict[str, Any] = {"heading": HEADINGS.get(status, "Unavailable"), "detail": detail}
    context["retry_after"] = retry_after
    response = render(request, "delivery/unavailable.html", context, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return _private(response)


class _QuietCsrfViewMiddleware(CsrfViewMiddleware):
    """Django's CSRF check, except that a refusal neither logs nor shows the path."""

    def _reject(self, request, reason):
        return _unavailable(
            request,
            403,
            "Enable cookies for this site, open the link again and press Reveal.",
        )


_csrf_protect_quietly = decorator_from_middleware(_QuietCsrfViewMiddleware)


@csrf_exempt  # the site-wide check would log the path on refusal; the quiet one checks instead
@_csrf_protect_quietly
@require_http_methods(["GET", "POST"])
@sensitive_variables()
def reveal_page(request, token: str):
    ip = client_ip(request)
    user_agent = request.headers.get("User-Agent", "")
    try:
        if request.method == "POST":
            rate_limit_hit(scope="reveal", ip=ip)
            revealed = delivery_reveal(token=token, ip=ip, user_agent=user_agent)
            return _private(render(request, "delivery/revealed.html", _shown(revealed.payload)))
        rate_limit_hit(scope="view", ip=ip)
        state = delivery_view(token=token, ip=ip, user_agent=user_agent)
    except RateLimitedError as exc:
        return _unavailable(request, 429, exc.detail, retry_after=exc.retry_after)
    except ApplicationError as exc:
        return _unavailable(request, exc.status_code, exc.detail)
    except (OperationalError, InterfaceError):
        # The database refused: nothing was revealed (the claim is one UPDATE); come back.
        logger.warning("the one-time link page found the database unavailable")
        return _unavailable(
            request,
            503,
            "We cannot open links right now. Nothing was used up: try again in a minute.",
            retry_after=DATABASE_RETRY_AFTER_SECONDS,
        )
    except Exception:
        # Django would log "Internal Server Error: /d/<token>"; this says the same without it.
        logger.exception("the one-time link page failed on a %s", request.method)
        return _unavailable(
            request,
            500,
            "Something went wrong on our side. Try again in a minute; if the link no longer "
            "works, ask for a new one.",
        )
    context = {"expires_at": state.expires_at, "referrer_policy": "same-origin"}
    response = render(request, "delivery/reveal.html", context)
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on the
    # form's POST and Django's CSRF check (HTTPS) refuses it. Nothing here links elsewhere.
    return _private(response, referrer_policy="same-origin")


@sensitive_variables()
def _shown(payload) -> dict:
    if isinstance(payload, dict):
        fields = [
            (name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
            for name, value in payload.items()
        ]
        return {"fields": fields, "text": None}
    return {"fields": None, "text": payload}
