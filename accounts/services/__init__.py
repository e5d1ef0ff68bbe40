"""Every write of the accounts app. Other apps import from here, never from the submodules."""

from .api_keys import api_key_authenticate, api_key_create, api_key_revoke, api_key_revoke_all
from .audit import audit_record, audit_verify
from .roles import roles_sync, user_roles
from .users import (
    user_deactivate,
    user_email_taken,
    user_register,
    user_set_roles,
    user_update,
)

__all__ = [
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "api_key_revoke_all",
    "audit_record",
    "audit_verify",
    "roles_sync",
    "user_deactivate",
    "user_email_taken",
    "user_register",
    "user_roles",
    "user_set_roles",
    "user_update",
]
