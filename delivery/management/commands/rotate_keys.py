from django.core.management.base import BaseCommand, CommandError

from delivery.services import keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value (every EncryptedTextField of every model) under the "
        "newest key of ENCRYPTION_KEYS, in batches. Resumable: values already under the newest "
        "key are skipped. Exits non-zero when a value could not be decrypted (a key missing)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--dry-run", action="store_true", help="Decrypt and count, write nothing."
        )

    def handle(self, *args, batch_size, dry_run, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        report = keys_rotate(batch_size=batch_size, dry_run=dry_run)
        verb = "would rotate" if dry_run else "rotated"
        self.stdout.write(f"newest key: {report.newest_key}")
        for field in report.fields:
            self.stdout.write(
                f"{field.label}: {verb} {field.rotated}, already current {field.current}, "
                f"changed meanwhile {field.changed}, failed {field.failed}"
            )
            for failure in field.failures:
                self.stderr.write(f"  {failure}")
        self.stdout.write(
            f"total: {verb} {report.rotated}, already current {report.current}, "
            f"changed meanwhile {report.changed}, failed {report.failed}"
        )
        if report.failed:
            raise CommandError(
                f"{report.failed} value(s) could not be re-encrypted: keep their key configured"
            )
