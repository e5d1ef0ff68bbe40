"""The bonus engine's public API. Other modules import from here, never from the submodules.

- grants: `bonus_assign` and the triggers (deposit, registration, promo code).
- eligibility: `check_eligibility_all`, `EligibilityFailure`, `IneligibleError`.
- lifecycle: cancel, force-convert, expiry, withdrawal, drawdown.
- leverage: Type A's leverage stack and `bonus_override_leverage`.
- conversion: Type C's `trade_deal_convert`.
- ledger: the credit intents (`intents_resolve` finishes what is left open).
- reconcile: `credit_reconcile`, ledger against server.

Call them outside a database transaction: each commits its own short transactions and then
talks to the MT5 server, never while holding a lock.
"""

from .conversion import trade_deal_convert
from .eligibility import EligibilityFailure, IneligibleError, check_eligibility_all
from .grants import (
    bonus_amount,
    bonus_assign,
    trigger_deposit,
    trigger_promo_code,
    trigger_registration,
)
from .ledger import intents_resolve
from .leverage import bonus_override_leverage, leverage_sync
from .lifecycle import (
    bonus_cancel,
    bonus_force_convert,
    bonuses_expire_due,
    drawdown_apply,
    withdrawal_apply,
)
from .reconcile import CreditDrift, credit_reconcile

__all__ = [
    "CreditDrift",
    "EligibilityFailure",
    "IneligibleError",
    "bonus_amount",
    "bonus_assign",
    "bonus_cancel",
    "bonus_force_convert",
    "bonus_override_leverage",
    "bonuses_expire_due",
    "check_eligibility_all",
    "credit_reconcile",
    "drawdown_apply",
    "intents_resolve",
    "leverage_sync",
    "trade_deal_convert",
    "trigger_deposit",
    "trigger_promo_code",
    "trigger_registration",
    "withdrawal_apply",
]
