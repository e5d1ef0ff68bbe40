"""`manage.py pool status` and `manage.py pool replenish --count N`."""

from django.core.management.base import BaseCommand, CommandError

from demo_pool.selectors import pool_status
from demo_pool.services import pool_replenish, provisioning_process


class Command(BaseCommand):
    help = "The demo account pool: its status, or provision N accounts now."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="Counts, sizing and quality figures.")
        replenish = sub.add_parser("replenish", help="Provision N accounts now (within the max).")
        replenish.add_argument("--count", type=int, default=10)
        replenish.add_argument(
            "--queue-only", action="store_true", help="Queue them for the workers; do not wait."
        )

    def handle(self, *args, action, **options):
        if action == "status":
            for name, value in pool_status().items():
                self.stdout.write(f"{name:24} {'-' if value is None else value}")
            return
        count = options["count"]
        if count < 1:
            raise CommandError("--count must be at least 1")
        queued = pool_replenish(count=count)
        self.stdout.write(f"queued {queued} of {count}")
        if not options["queue_only"] and queued:
            done = provisioning_process(limit=queued)
            self.stdout.write(
                f"provisioned {done['provisioned']}, retrying {done['retrying']}, "
                f"failed {done['failed']}, requests fulfilled {done['fulfilled']}"
            )
