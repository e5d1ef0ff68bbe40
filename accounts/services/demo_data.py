"""The local demo data `manage.py bootstrap` creates: never when DEBUG is off."""

from django.conf import settings
from django.db import transaction

from accounts.models import User
from accounts.roles import Role

from .users import user_set_roles

# Local-only credentials, shown in the README. Production never gets these (DEBUG is off).
DEMO_USERS: tuple[tuple[str, str, Role | None], ...] = (
    ("admin@brokerdesk.local", "admin-local-123", Role.SUPER_ADMIN),
    ("manager@brokerdesk.local", "manager-local-123", Role.CAMPAIGN_MANAGER),
    ("support@brokerdesk.local", "support-local-123", Role.SUPPORT_AGENT),
    ("viewer@brokerdesk.local", "viewer-local-123", Role.READ_ONLY),
    ("client@brokerdesk.local", "client-local-123", None),
)


class DemoDataRefused(Exception):
    pass


@transaction.atomic
def demo_users_ensure() -> int:
    """Create the demo users that are missing; return how many were created."""
    if not settings.DEBUG:
        raise DemoDataRefused("demo users are for local use: refused while DEBUG is off")
    created = 0
    for email, password, role in DEMO_USERS:
        if User.objects.filter(email=email).exists():
            continue
        user = User.objects.create_user(
            email=email,
            password=password,
            username=email.split("@")[0],
            is_superuser=role is Role.SUPER_ADMIN,
        )
        user_set_roles(user=user, roles=[role] if role else [])
        created += 1
    return created
