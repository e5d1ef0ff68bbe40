"""Typed errors of the outside servers: whether a retry is worth it is part of the type."""


class GatewayError(Exception):
    """Something went wrong talking to an outside server."""

    def __init__(
        self, message: str = "", *, gateway: str = "", code: str = "", status: int | None = None
    ):
        self.gateway = gateway
        self.code = code
        self.status = status  # the HTTP status the server answered with, if it answered
        super().__init__(message or self.__class__.__name__)


class TransientGatewayError(GatewayError):
    """Worth retrying later: timeout, connection refused, 5xx, overload, expired session."""


class PermanentGatewayError(GatewayError):
    """Retrying will not help: bad request, unknown account, refused operation."""


class UnknownOutcomeError(TransientGatewayError):
    """A write was sent but no answer came back: it may or may not have happened.

    Callers must look the operation up (MT5: find the deal by its comment) before retrying.
    """
