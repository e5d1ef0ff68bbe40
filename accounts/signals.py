"""What the account monitor tells higher floors, without importing them (see DESIGN.md).

- `account_event_recorded(sender, event)`: a committed `AccountEvent` is ready to act on.
  Receivers call their app's service and raise if it failed; the event is then retried.
- `receive_events_in_batches(kind, receiver)`: a higher floor takes the events of `kind` many
  at once: `receiver(events)` gets the first open event of each of many logins (claimed,
  committed) and returns, or raises if it failed as a whole (then each event is handed to
  it again on its own, so that one bad event fails alone). A kind with a batch receiver is
  handed only to it, never to `account_event_recorded`.
- `own_operation_comments(sender, comments) -> set[str]`: which of these deal comments
  are operation ids of this system's own MT5 writes (never deposits or withdrawals).
- `user_deactivated(sender, user)`: sent inside `user_deactivate`'s transaction, after the
  user row is marked inactive. Receivers end what the user runs in their app (trading
  sessions) in that same transaction: if one raises, the deactivation rolls back whole.
"""

from collections.abc import Callable

from django.dispatch import Signal

account_event_recorded = Signal()
own_operation_comments = Signal()
user_deactivated = Signal()

_batch_receivers: dict[str, Callable] = {}


def receive_events_in_batches(kind: str, receiver: Callable) -> None:
    """Hand the events of `kind` to `receiver(events)`, many at once (see above)."""
    _batch_receivers[kind] = receiver


def batch_receivers() -> dict[str, Callable]:
    """The kinds taken in batches, and their receivers."""
    return dict(_batch_receivers)
