"""Walk the audit chains and name the first broken link: exit 0 if intact, 1 if not."""

from django.core.management.base import BaseCommand, CommandError

from accounts.services.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains; name the first broken link (exit 1) if any."

    def add_arguments(self, parser):
        parser.add_argument(
            "--object-type", help="Only the chains of this type, e.g. bonuses.bonus"
        )
        parser.add_argument("--object-id", help="Only this object's chain (needs --object-type)")

    def handle(self, *args, object_type=None, object_id=None, **options):
        if object_id is not None and object_type is None:
            raise CommandError("--object-id needs --object-type.")
        result = audit_verify(object_type=object_type, object_id=object_id)
        counts = f"{result.events_checked} events in {result.chains_checked} chains"
        if result.intact:
            self.stdout.write(f"audit trail intact: {counts}")
            return
        link = result.first_break
        self.stderr.write(
            f"audit trail BROKEN at event {link.event_id} ({link.chain}, seq {link.seq}): "
            f"{link.problem}"
        )
        self.stderr.write(f"{result.breaks} broken link(s) in {counts}")
        # Not CommandError: its "CommandError: " prefix would mangle the report above.
        raise SystemExit(1)
