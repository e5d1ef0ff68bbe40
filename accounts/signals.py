"""What the account monitor tells higher floors, without importing them (see DESIGN.md).

- `account_event_recorded(sender, event)`: a committed `AccountEvent` is ready to act on.
  Receivers call their app's service and raise if it failed; the event is then retried.
- `own_operation_comments(sender, comments) -> set[str]`: which of these deal comments
  are operation ids of this system's own MT5 writes (never deposits or withdrawals).
- `user_deactivated(sender, user)`: sent inside `user_deactivate`'s transaction, after the
  user row is marked inactive. Receivers end what the user runs in their app (trading
  sessions) in that same transaction: if one raises, the deactivation rolls back whole.
"""

from django.dispatch import Signal

account_event_recorded = Signal()
own_operation_comments = Signal()
user_deactivated = Signal()
