"""The account monitor: turns what happens on MT5 accounts into recorded `AccountEvent`s.

A sweep walks the active monitored logins in batches (`MONITOR_BATCH_SIZE`). Per batch:

1. one query for the stored snapshots, one gateway call for every account's state
   (`get_states`), compared in memory: a quiet account costs no further work;
2. one batched `get_deals` call, only for accounts whose balance or credit moved, each from
   its own deal cursor;
3. one short transaction that locks the changed rows, classifies their new deals into events
   and advances snapshot and cursor together with the events they produced;
4. after the commit, the new events are dispatched (`accounts.services.events`).

Overlapping sweeps are harmless: the write phase re-reads the locked rows, a deal is recorded
once (unique on server + ticket) and a snapshot never moves back in time. A transient fault
blames no account and delays only what it hit: a read refused quickly is asked again within
the batch (`MONITOR_CALL_RETRIES`); a batch whose states still cannot be read writes nothing
and backs off on its own (jittered, at most `MONITOR_BATCH_BACKOFF_MAX_SECONDS`) while the
other batches go on; accounts whose deals cannot be read stay where they were, to be re-read
next sweep, while the rest of their batch advances. Only when every batch fails (the gateway
is down) does the scheduled sweep back off, to one probing batch at a time, and the first
answer ends it. An account the server does not answer for (or whose data cannot be
processed) counts an error, and `MONITOR_PAUSE_AFTER_ERRORS` in a row pause it until staff
reset it.

The package, by concern: `discovery` (new logins), `sweep` (the full sweep and beat's fan-out),
`batch` (one batch), `calls` (retried, isolated gateway reads), `recording` (snapshots and
events), `backoff` (a batch's and an outage's), `results` (counts and the last sweep's record),
`actions` (what staff do to one account).
"""

from .actions import monitor_register, monitor_reset_errors, monitor_test_deal
from .backoff import BATCH_BACKOFF_KEY, OUTAGE_CACHE_KEY, outage_note
from .batch import batch_ranges, monitor_batch
from .discovery import monitor_discover
from .recording import SNAPSHOT_FIELDS, WRITE_FIELDS
from .results import STATUS_CACHE_KEY, SWEEPS_CACHE_KEY, SweepResult, server_name, sweep_record
from .sweep import SWEEP_LOCK_KEY, monitor_batch_finished, monitor_sweep, monitor_sweep_schedule

__all__ = [
    "BATCH_BACKOFF_KEY",
    "OUTAGE_CACHE_KEY",
    "SNAPSHOT_FIELDS",
    "STATUS_CACHE_KEY",
    "SWEEPS_CACHE_KEY",
    "SWEEP_LOCK_KEY",
    "WRITE_FIELDS",
    "SweepResult",
    "batch_ranges",
    "monitor_batch",
    "monitor_batch_finished",
    "monitor_discover",
    "monitor_register",
    "monitor_reset_errors",
    "monitor_sweep",
    "monitor_sweep_schedule",
    "monitor_test_deal",
    "outage_note",
    "server_name",
    "sweep_record",
]
