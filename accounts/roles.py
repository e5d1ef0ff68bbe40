"""Who may do what: the one declarative table of staff roles. Later apps extend it here.

Two views of the same roles:

* `API_AREAS`: the REST contract's role table (shared/API.md "Roles"), read by the DRF
  permission classes in `accounts.permissions`.
* `ROLE_MODEL_PERMISSIONS`: the Django model permissions each role group holds, which is what
  the admin (the staff dashboard) shows and allows. Patterns are `app_label.codename` globs,
  resolved against the permissions that exist when `roles_sync()` runs (after every migrate).
"""

from enum import StrEnum


class Role(StrEnum):
    SUPER_ADMIN = "Super Admin"
    CAMPAIGN_MANAGER = "Campaign Manager"
    SUPPORT_AGENT = "Support Agent"
    READ_ONLY = "Read-Only"


STAFF_ROLES: tuple[Role, ...] = tuple(Role)

# An API key acts as its user, with that user's roles, plus only the scopes a Super Admin
# granted it. Each scope is a pseudo-role a request holds only when its key has that scope.
API_KEY_SCOPES: tuple[str, ...] = ("triggers", "demo", "signals")


def scope_role(scope: str) -> str:
    """The pseudo-role of an API key scope: `scope:triggers`."""
    if scope not in API_KEY_SCOPES:
        raise KeyError(f"unknown API key scope {scope!r}: one of {API_KEY_SCOPES}")
    return f"scope:{scope}"


SCOPE_TRIGGERS = scope_role("triggers")
SCOPE_DEMO = scope_role("demo")
SCOPE_SIGNALS = scope_role("signals")
SCOPE_ROLES = frozenset(scope_role(scope) for scope in API_KEY_SCOPES)

_ALL_STAFF = frozenset(STAFF_ROLES)
_SA = Role.SUPER_ADMIN

API_AREAS: dict[str, frozenset[str]] = {
    "campaigns.read": _ALL_STAFF,
    "campaigns.write": frozenset({_SA, Role.CAMPAIGN_MANAGER}),
    "bonuses.read": _ALL_STAFF,
    "bonuses.assign": frozenset({_SA, Role.SUPPORT_AGENT}),
    "bonuses.manage": frozenset({_SA}),
    # API.md: manual credit above a role's limit waits "until a different Super Admin approves"
    "bonuses.approve": frozenset({_SA}),
    "mt5.read": _ALL_STAFF,
    "monitoring.read": _ALL_STAFF,
    "monitoring.write": frozenset({_SA}),
    "reports.read": frozenset({_SA, Role.READ_ONLY}),
    "audit.read": frozenset({_SA, Role.READ_ONLY}),
    "triggers": frozenset({_SA, SCOPE_TRIGGERS}),
    "demo.status": frozenset({_SA, Role.READ_ONLY, SCOPE_DEMO}),
    "demo.replenish": frozenset({_SA, SCOPE_DEMO}),
    "demo.activate": frozenset({_SA, SCOPE_DEMO}),
    "demo.resend": frozenset({_SA, Role.SUPPORT_AGENT, SCOPE_DEMO}),
    "demo.health": frozenset({_SA, Role.SUPPORT_AGENT, SCOPE_DEMO}),
    "delivery.read": _ALL_STAFF,  # API.md: `GET delivery/{id}/` answers staff, never the secret
    "licensing.admin": frozenset({_SA}),
    "signals.send": _ALL_STAFF | {SCOPE_SIGNALS},  # API.md: staff or a key with scope signals
}

# (include globs, exclude globs) per role. Super Admin holds every permission.
ROLE_MODEL_PERMISSIONS: dict[Role, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Role.SUPER_ADMIN: (("*.*",), ()),
    Role.CAMPAIGN_MANAGER: (
        (
            "campaigns.*",
            "bonuses.view_*",
            "accounts.view_mt5account*",
            "accounts.view_monitored*",
            "accounts.view_accountevent",
            "trading_sessions.view_*",
        ),
        (),
    ),
    Role.SUPPORT_AGENT: (
        (
            "campaigns.view_*",
            "bonuses.view_*",
            "bonuses.add_bonus",
            "accounts.view_mt5account*",
            "accounts.view_monitored*",
            "accounts.view_accountevent",
            "demo_pool.view_*",
            "demo_pool.resend_presspass",  # API.md: Support Agent may resend
            "delivery.view_*",
            "trading_sessions.view_*",
        ),
        # API.md: pool status is Super Admin and Read-Only; Support Agent reads health only.
        ("demo_pool.view_pool_status",),
    ),
    Role.READ_ONLY: (
        (
            "campaigns.view_*",
            "bonuses.view_*",
            "accounts.view_auditevent",
            "accounts.view_mt5account*",
            "accounts.view_monitored*",
            "accounts.view_accountevent",
            "demo_pool.view_*",
            "trading_sessions.view_*",
        ),
        (),
    ),
}
