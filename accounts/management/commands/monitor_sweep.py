"""One sweep of the account monitor, run now in this process: what operators and cron use."""

from django.core.management.base import BaseCommand, CommandError

from accounts.services import monitor_discover, monitor_sweep

FIELDS = (
    "accounts",
    "changed",
    "deposits",
    "withdrawals",
    "drawdowns",
    "trades",
    "errors",
    "paused",
    "batches",
    "dispatched",
    "ms",
)


class Command(BaseCommand):
    help = (
        "Register the server's new logins, then sweep every active monitored account once "
        "and dispatch the events found; print the counts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-discover",
            action="store_true",
            help="Sweep the accounts already monitored; do not look for new logins.",
        )
        parser.add_argument(
            "--batch-size", type=int, help="Accounts per batch (default: MONITOR_BATCH_SIZE)."
        )

    def handle(self, *args, no_discover=False, batch_size=None, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if not no_discover:
            discovered = monitor_discover(batch_size=batch_size)
            self.stdout.write(f"discovered: {discovered}")
        result = monitor_sweep(batch_size=batch_size)
        for name in FIELDS:
            self.stdout.write(f"{name}: {getattr(result, name)}")
        if result.outages:
            self.stderr.write(
                f"{result.outages} batch(es) skipped: the MT5 gateway was unavailable."
            )
