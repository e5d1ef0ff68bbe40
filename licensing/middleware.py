"""API usage log: every call under LICENSE_USAGE_LOG_PREFIX is queued (never INSERTed here);
`licensing.services.usage_flush` writes them in bulk."""

import logging

from django.conf import settings
from django.utils.functional import SimpleLazyObject, empty

from .services.usage import UsageCall, usage_enqueue

logger = logging.getLogger(__name__)


def _user_id(request) -> int | None:
    user = request.__dict__.get("user")
    if user is None:
        return None
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None  # never resolved by the view: do not query the session for it
    return user.pk if getattr(user, "is_authenticated", False) else None


class ApiUsageLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix = settings.LICENSE_USAGE_LOG_PREFIX

    def __call__(self, request):
        if not self.prefix or not request.path.startswith(self.prefix):
            return self.get_response(request)
        call = request.licensing_usage = UsageCall.start(request)
        response = self.get_response(request)
        if call.queued_status == response.status_code:
            return response  # queued on the way (validation's round trip)
        try:
            usage_enqueue(
                call.entry(
                    status_code=response.status_code,
                    license_id=getattr(request, "licensing_license_id", None),
                    user_id=_user_id(request),
                )
            )
        except Exception:  # the log must never break the answer
            logger.warning("usage log: a call could not be queued", exc_info=True)
        return response
