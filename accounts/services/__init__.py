"""Every write of the accounts app. Other apps import from here, never from the submodules."""

from .api_keys import api_key_authenticate, api_key_create, api_key_revoke, api_key_revoke_all
from .audit import audit_record, audit_verify
from .events import account_events_dispatch, account_events_pending, account_events_retry_now
from .monitor import (
    SweepResult,
    monitor_discover,
    monitor_register,
    monitor_reset_errors,
    monitor_sweep,
    monitor_test_deal,
)
from .roles import roles_sync, user_roles
from .users import (
    user_deactivate,
    user_email_taken,
    user_register,
    user_set_roles,
    user_update,
)

__all__ = [
    "SweepResult",
    "account_events_dispatch",
    "account_events_pending",
    "account_events_retry_now",
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "api_key_revoke_all",
    "audit_record",
    "audit_verify",
    "monitor_discover",
    "monitor_register",
    "monitor_reset_errors",
    "monitor_sweep",
    "monitor_test_deal",
    "roles_sync",
    "user_deactivate",
    "user_email_taken",
    "user_register",
    "user_roles",
    "user_set_roles",
    "user_update",
]
