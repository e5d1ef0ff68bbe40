"""Trading sessions' refusals, each with its HTTP status and machine code."""

from core.errors import ApplicationError, ConflictError


class GaleExposureError(ApplicationError):
    status_code = 400
    code = "gale_exposure"
    default_detail = "The full gale ladder could lose more than the stop loss or the balance."


class SessionActiveError(ConflictError):
    code = "session_active"
    default_detail = "Stop the session first."


class SessionNotActiveError(ConflictError):
    code = "session_not_active"
    default_detail = "The session is not running."


class AccountInUseError(ConflictError):
    code = "account_in_use"
    default_detail = "This broker account has sessions or trades; stop and delete them first."


class BrokerUnavailableError(ConflictError):
    code = "broker_unavailable"
    default_detail = "The broker did not answer and no earlier balance is known; try again."


class LossBudgetError(ApplicationError):
    status_code = 400
    code = "loss_budget_exceeded"
    default_detail = "The amount is more than the session may still lose before its stop loss."


class UnknownChannelError(ApplicationError):
    status_code = 400
    code = "unknown_channel"
    default_detail = "No such signal channel."


class PlanEndedError(ConflictError):
    code = "plan_ended"
    default_detail = "Your plan has ended: the sessions started under it stop."
