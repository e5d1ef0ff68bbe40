"""One place where errors become HTTP answers: `{"detail": "...", "code": "..."}`.

Domain errors carry their own status and code; a fault of an outside server is the outside's
(502/503 with a code), never a 500; DRF's own errors keep their shape and gain a `code`.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.errors import ApplicationError, RateLimitedError
from gateways.errors import GatewayError, TransientGatewayError

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        response = Response(
            {"detail": exc.detail, "code": exc.code, **exc.extra}, status=exc.status_code
        )
        if isinstance(exc, RateLimitedError):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, GatewayError):
        transient = isinstance(exc, TransientGatewayError)
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
