"""Refusals of the one-time links, as the API and the /d/ pages answer them."""

from core.errors import ApplicationError, GoneError, NotFoundError


class LinkNotFoundError(NotFoundError):
    code = "link_not_found"
    default_detail = "This link does not exist."


class LinkUsedError(GoneError):
    code = "link_used"
    default_detail = "This link has already been opened; it works only once."


class LinkExpiredError(GoneError):
    code = "link_expired"
    default_detail = "This link has expired."


class LinkSupersededError(GoneError):
    code = "link_superseded"
    default_detail = "This link was replaced by a newer one."


class LinkFailedError(GoneError):
    code = "link_failed"
    default_detail = "This link was never delivered; ask for a new one."


class InvalidDeliveryError(ApplicationError):
    """Bad input to `delivery_create` (method, contact, payload)."""

    code = "invalid_delivery"


class UnknownChannelError(InvalidDeliveryError):
    """A delivery method no channel in `delivery/channels/` registered."""

    code = "invalid_method"
    default_detail = "Unknown delivery method."
