"""Every write of the licensing app. Other apps import from here, never from the submodules."""

from .licenses import (
    license_activate,
    license_cache_invalidate,
    license_create,
    license_create_delivered,
    license_delivery_purpose,
    license_extend,
    license_suspend,
    licenses_expire_due,
)
from .quotas import (
    QuotaDecision,
    quota_allows,
    quota_check_and_reserve,
    quota_holds_purge,
    quota_limits,
    quota_release,
    subscription_current,
)
from .subscriptions import (
    subscription_cancel,
    subscription_change,
    subscription_create,
    subscriptions_expire_due,
    subscriptions_lapsed,
)
from .trades import trade_report, trade_stats
from .usage import usage_enqueue, usage_flush, usage_purge
from .validation import license_key_parse, license_snapshot, license_validate, snapshot_code

__all__ = [
    "QuotaDecision",
    "license_activate",
    "license_cache_invalidate",
    "license_create",
    "license_create_delivered",
    "license_delivery_purpose",
    "license_extend",
    "license_key_parse",
    "license_snapshot",
    "license_suspend",
    "license_validate",
    "licenses_expire_due",
    "quota_allows",
    "quota_check_and_reserve",
    "quota_holds_purge",
    "quota_limits",
    "quota_release",
    "snapshot_code",
    "subscription_cancel",
    "subscription_change",
    "subscription_create",
    "subscription_current",
    "subscriptions_expire_due",
    "subscriptions_lapsed",
    "trade_report",
    "trade_stats",
    "usage_enqueue",
    "usage_flush",
    "usage_purge",
]
