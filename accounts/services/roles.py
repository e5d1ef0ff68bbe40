"""Keeping the role groups equal to the table in `accounts.roles`."""

from fnmatch import fnmatchcase

from django.contrib.auth.models import Group, Permission

from accounts.roles import ROLE_MODEL_PERMISSIONS, STAFF_ROLES, Role


def roles_sync(*, using: str = "default") -> dict[str, int]:
    """Create the four staff groups and set each one's permissions to exactly the table's."""
    permissions = list(
        Permission.objects.using(using).select_related("content_type").order_by("pk")
    )
    counts = {}
    for role, (include, exclude) in ROLE_MODEL_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        chosen = [p for p in permissions if _matches(p, include) and not _matches(p, exclude)]
        group.permissions.set(chosen)
        counts[role.value] = len(chosen)
    return counts


def _matches(permission: Permission, patterns: tuple[str, ...]) -> bool:
    name = f"{permission.content_type.app_label}.{permission.codename}"
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def user_roles(user) -> frozenset[str]:
    """The staff roles a user holds; a superuser counts as Super Admin."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_brokerdesk_roles", None)
    if cached is None:
        names = set(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))
        if user.is_superuser:
            names.add(Role.SUPER_ADMIN.value)
        cached = frozenset(names)
        user._brokerdesk_roles = cached
    return cached
