"""Refusals of the demo pool, as the API answers them."""

from accounts.errors import ApplicationError, ConflictError, NotFoundError


class PressPassActiveError(ConflictError):
    code = "press_pass_active"
    default_detail = "This user already has an active press pass."


class ActivationQueuedError(ConflictError):
    code = "activation_queued"
    default_detail = "This user already waits for a press pass."


class PressPassNotFoundError(NotFoundError):
    code = "press_pass_not_found"
    default_detail = "This user has no active press pass."


class ActivationRequestNotFoundError(NotFoundError):
    code = "request_not_found"
    default_detail = "No activation request with this id."


class DemoServerUnavailableError(ApplicationError):
    """The demo server did not answer; nothing was handed out."""

    status_code = 503
    code = "demo_server_unavailable"
    default_detail = "The demo server is not answering; try again shortly."
