"""What licensing tells higher floors, without importing them (see DESIGN.md).

- `plan_ended(sender, user_id, subscription)`: the user's plan stopped applying (cancelled, or
  found past its end by the expiry sweep); sent inside the transaction that recorded it (an
  audit row). Receivers end what the user ran under that plan (trading sessions) in that same
  transaction. Moving to another plan is no end: nothing is sent.
"""

from django.dispatch import Signal

plan_ended = Signal()
