"""Licensing's refusals, each with its HTTP status and machine code."""

from core.errors import ApplicationError, ConflictError


class MalformedLicenseKeyError(ApplicationError):
    status_code = 400
    code = "invalid_license_key"
    default_detail = "That is not a license key."


class LicenseKeyRequiredError(ApplicationError):
    status_code = 401
    code = "license_key_required"
    default_detail = "Send a valid license key in the X-License-Key header."


class LicenseNotUsableError(ApplicationError):
    status_code = 403
    code = "license_not_valid"
    default_detail = "This license is expired or suspended."


class QuotaExceededError(ConflictError):
    code = "quota_exceeded"
    default_detail = "Your plan does not allow more of this."
