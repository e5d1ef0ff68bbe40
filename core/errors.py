"""The domain's errors. Every app raises a subclass of `ApplicationError`; one DRF exception
handler (core/exceptions.py) turns it into `{"detail", "code"}` with its 4xx status."""


class ApplicationError(Exception):
    """A refusal the caller can act on: bad input or a state that forbids the operation."""

    status_code = 400
    code = "invalid"
    default_detail = "The request cannot be carried out."

    def __init__(self, detail: str | None = None, *, code: str | None = None, extra=None):
        self.detail = detail or self.default_detail
        if code:
            self.code = code
        self.extra = dict(extra or {})
        super().__init__(self.detail)


class NotFoundError(ApplicationError):
    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class ConflictError(ApplicationError):
    status_code = 409
    code = "conflict"
    default_detail = "The current state does not allow this."


class GoneError(ApplicationError):
    status_code = 410
    code = "gone"
    default_detail = "This is no longer available."


class ForbiddenError(ApplicationError):
    status_code = 403
    code = "permission_denied"
    default_detail = "You are not allowed to do this."


class RateLimitedError(ApplicationError):
    status_code = 429
    code = "rate_limited"
    default_detail = "Too many requests."

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **kwargs):
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after
