"""The bonus engine's public API. Other modules import from here, never from the submodules.

- grants: `bonus_assign` and the triggers (deposit, registration, promo code).
- deals: a deposit is a real MT5 deal (`deposit_deal_verify`, `deposit_deal_match`).
- limits, approvals: per-role limits on manual credit; four-eyes `BonusApproval` decisions.
- eligibility: `check_eligibility_all`, `EligibilityFailure`, `IneligibleError`.
- lifecycle: cancel, force-convert, expiry, withdrawal, drawdown.
- leverage: Type A's leverage stack and `bonus_override_leverage`.
- conversion: Type C's `trade_deal_convert`.
- ledger: the credit intents (`intents_resolve` finishes what is left open).
- reconcile: `credit_reconcile`, ledger against server.

Call them outside a database transaction: each commits its own short transactions and then
talks to the MT5 server, never while holding a lock.
"""

from .approvals import bonus_approval_approve, bonus_approval_reject
from .conversion import trade_deal_convert
from .deals import DealError, deposit_deal_match, deposit_deal_verify
from .eligibility import EligibilityFailure, IneligibleError, check_eligibility_all
from .grants import (
    Deposit,
    bonus_amount,
    bonus_assign,
    trigger_deposit,
    trigger_deposits,
    trigger_promo_code,
    trigger_registration,
)
from .ledger import intents_resolve, operation_execute
from .leverage import bonus_override_leverage, leverage_sync
from .lifecycle import (
    bonus_cancel,
    bonus_force_convert,
    bonuses_expire_due,
    drawdown_apply,
    withdrawal_apply,
)
from .limits import ManualLimit, manual_credit_today, manual_limit_of
from .reconcile import CreditDrift, credit_reconcile

__all__ = [
    "CreditDrift",
    "DealError",
    "Deposit",
    "EligibilityFailure",
    "IneligibleError",
    "ManualLimit",
    "bonus_amount",
    "bonus_approval_approve",
    "bonus_approval_reject",
    "bonus_assign",
    "bonus_cancel",
    "bonus_force_convert",
    "bonus_override_leverage",
    "bonuses_expire_due",
    "check_eligibility_all",
    "credit_reconcile",
    "deposit_deal_match",
    "deposit_deal_verify",
    "drawdown_apply",
    "intents_resolve",
    "leverage_sync",
    "manual_credit_today",
    "manual_limit_of",
    "operation_execute",
    "trade_deal_convert",
    "trigger_deposit",
    "trigger_deposits",
    "trigger_promo_code",
    "trigger_registration",
    "withdrawal_apply",
]
