"""DRF permission classes that read the role table (`accounts.roles.API_AREAS`)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import ApiKey
from accounts.roles import API_AREAS, API_KEY_SCOPES, scope_role


def request_roles(request) -> frozenset[str]:
    """The caller's staff roles, plus one `scope:<name>` per scope of the API key it came with.

    A key acts as its user: a client's key holds nothing a client does not, unless a Super
    Admin granted the key a scope. A JWT or a session never holds a scope.
    """
    from accounts.services import user_roles

    roles = user_roles(request.user)
    api_key = getattr(request, "auth", None)
    if isinstance(api_key, ApiKey):
        granted = {scope_role(s) for s in api_key.scopes or () if s in API_KEY_SCOPES}
        roles = roles | granted
    return roles


def has_area(request, area: str) -> bool:
    return bool(request_roles(request) & API_AREAS[area])


def area_permission(read: str, write: str | None = None) -> type[BasePermission]:
    """A permission class: `read` area for safe methods, `write` (default: read) for the rest.

    >>> permission_classes = [area_permission("campaigns.read", "campaigns.write")]
    """
    for area in (read, write):
        if area is not None and area not in API_AREAS:
            raise KeyError(f"unknown API area {area!r}: add it to accounts.roles.API_AREAS")

    class AreaPermission(BasePermission):
        message = "Your role does not allow this."

        def has_permission(self, request, view):
            if not (request.user and request.user.is_authenticated):
                return False
            area = read if request.method in SAFE_METHODS else (write or read)
            return has_area(request, area)

    AreaPermission.__name__ = f"Area[{read}|{write or read}]"
    return AreaPermission


class IsStaffRole(BasePermission):
    """Any of the four staff roles."""

    def has_permission(self, request, view):
        from accounts.services import user_roles

        return bool(user_roles(request.user))
