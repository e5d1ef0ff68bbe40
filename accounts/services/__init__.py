"""Every write of the accounts app. Other apps import from here, never from the submodules."""

from .api_keys import (
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
    api_key_revoke_all,
    api_key_scopes_clean,
    api_key_set_scopes,
)
from .audit import audit_record, audit_record_many, audit_verify
from .events import account_events_dispatch, account_events_pending, account_events_retry_now
from .lockout import login_attempt_start, login_attempt_succeeded, login_lockout_unlock
from .monitor import (
    SweepResult,
    monitor_discover,
    monitor_register,
    monitor_reset_errors,
    monitor_sweep,
    monitor_test_deal,
)
from .parallel import in_threads, threads_for
from .roles import roles_sync, user_roles
from .tokens import (
    TokenPair,
    token_families_revoke_all,
    token_family_revoke,
    token_pair_issue,
    token_refresh,
)
from .users import (
    user_deactivate,
    user_email_taken,
    user_password_change,
    user_register,
    user_set_roles,
    user_update,
    username_check,
    username_is_reserved,
)

__all__ = [
    "SweepResult",
    "TokenPair",
    "account_events_dispatch",
    "account_events_pending",
    "account_events_retry_now",
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "api_key_revoke_all",
    "api_key_scopes_clean",
    "api_key_set_scopes",
    "audit_record",
    "audit_record_many",
    "audit_verify",
    "in_threads",
    "login_attempt_start",
    "login_attempt_succeeded",
    "login_lockout_unlock",
    "monitor_discover",
    "monitor_register",
    "monitor_reset_errors",
    "monitor_sweep",
    "monitor_test_deal",
    "roles_sync",
    "threads_for",
    "token_families_revoke_all",
    "token_family_revoke",
    "token_pair_issue",
    "token_refresh",
    "user_deactivate",
    "user_email_taken",
    "user_password_change",
    "user_register",
    "user_roles",
    "user_set_roles",
    "user_update",
    "username_check",
    "username_is_reserved",
]
