"""Who a licensing request is: the license named by its `X-License-Key` header (a holder's
client, an admin license), or a signed-in Super Admin. DRF's user authentication is not used
for a key: a license is not a user, so the views read it here, through a cached snapshot."""

from rest_framework.permissions import BasePermission

from accounts.permissions import has_area
from core.errors import ForbiddenError

from .errors import LicenseKeyRequiredError, LicenseNotUsableError
from .keys import MalformedKeyError, key_normalize
from .models import License
from .services import license_snapshot, snapshot_code


def header_license(request) -> tuple[License | None, dict | None]:
    """The license named by X-License-Key (None, None without one); the lookup is cached."""
    raw = request.headers.get("X-License-Key")
    if not raw:
        return None, None
    try:
        key = key_normalize(raw)
    except MalformedKeyError as exc:
        raise LicenseKeyRequiredError(str(exc)) from exc
    snapshot = license_snapshot(key=key)
    if snapshot is None:
        raise LicenseKeyRequiredError("Unknown license key.")
    request._request.licensing_license_id = snapshot["id"]
    return None, snapshot


def require_license(request) -> License:
    """The caller's usable license from X-License-Key: 401 without one, 403 when not VALID."""
    _, snapshot = header_license(request)
    if snapshot is None:
        raise LicenseKeyRequiredError()
    code = snapshot_code(snapshot)
    if code != License.Code.VALID:
        raise LicenseNotUsableError(
            f"This license is {code.lower()}.", code=f"license_{code.lower()}"
        )
    return License.objects.get(pk=snapshot["id"])


class LicensingAdminPermission(BasePermission):
    """Super Admin (JWT, session or API key), or a VALID admin license in X-License-Key."""

    message = "Licensing administration needs a Super Admin or an admin license key."

    def has_permission(self, request, view):
        if request.user and request.user.is_authenticated and has_area(request, "licensing.admin"):
            return True
        _, snapshot = header_license(request)
        if snapshot is None:
            return False
        if not snapshot["is_admin"] or snapshot_code(snapshot) != License.Code.VALID:
            raise ForbiddenError(self.message)
        request._request.licensing_admin_license_id = snapshot["id"]
        return True
