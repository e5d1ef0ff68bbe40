"""Refusals of the demo pool, as the API answers them."""

from core.errors import ApplicationError, ConflictError, NotFoundError


class PressPassActiveError(ConflictError):
    code = "press_pass_active"
    default_detail = "This user already has an active press pass."


class ActivationQueuedError(ConflictError):
    code = "activation_queued"
    default_detail = "This user already waits for a press pass."


class PressPassNotFoundError(NotFoundError):
    code = "press_pass_not_found"
    default_detail = "This user has no active press pass."


class CredentialsRotatingError(ConflictError):
    code = "credentials_rotating"
    default_detail = (
        "This press pass's password is being changed by another request; try again shortly."
    )


class ActivationRequestNotFoundError(NotFoundError):
    code = "request_not_found"
    default_detail = "No activation request with this id."


class DemoServerUnavailableError(ApplicationError):
    """The demo server did not answer; nothing was handed out."""

    status_code = 503
    code = "demo_server_unavailable"
    default_detail = "The demo server is not answering; try again shortly."


class IdempotencyKeyInvalidError(ApplicationError):
    code = "idempotency_key_invalid"
    default_detail = (
        "Idempotency-Key must be 16 to 128 characters of letters, digits and - _ . : ~ + / = "
        "(a UUID is ideal), optionally in double quotes."
    )


class IdempotencyKeyReusedError(ApplicationError):
    """The key was first used for another request (another body or another caller)."""

    status_code = 422
    code = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was used for a different request; use a new key for a new one."
    )


class IdempotencyKeyBusyError(ConflictError):
    code = "idempotency_key_busy"
    default_detail = "Another request with this Idempotency-Key is being answered; try again."
