"""Every write of the demo pool. Other code imports from here:

from demo_pool.services import press_pass_activate, pool_refill
"""

from .assignment import (
    ActivationResult,
    activation_requests_fulfil,
    press_pass_activate,
    press_pass_resend,
)
from .lifecycle import (
    HealthReport,
    account_health_check,
    account_health_report,
    account_retire,
    pool_cleanup,
    pool_health_check,
    press_passes_expire_due,
)
from .provisioning import (
    RefillResult,
    pool_refill,
    pool_replenish,
    provisioning_enqueue,
    provisioning_process,
)
from .replay import ActivationAnswer, press_pass_activate_once

__all__ = [
    "ActivationAnswer",
    "ActivationResult",
    "HealthReport",
    "RefillResult",
    "account_health_check",
    "account_health_report",
    "account_retire",
    "activation_requests_fulfil",
    "pool_cleanup",
    "pool_health_check",
    "pool_refill",
    "pool_replenish",
    "press_pass_activate",
    "press_pass_activate_once",
    "press_pass_resend",
    "press_passes_expire_due",
    "provisioning_enqueue",
    "provisioning_process",
]
