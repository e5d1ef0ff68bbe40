from django.core.management.base import BaseCommand, CommandError

from delivery.crypto import new_key_entry


class Command(BaseCommand):
    help = (
        "Print a new AES-256 key entry 'kid:base64key' for ENCRYPTION_KEYS (256 random bits). "
        "Nothing is stored: put it in the environment (see docs/delivery.md, key rotation)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kid", help="Key id (default: k<UTC timestamp>).")

    def handle(self, *args, kid, **options):
        try:
            self.stdout.write(new_key_entry(kid))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
