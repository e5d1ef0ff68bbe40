from django.core.management.base import BaseCommand, CommandError

from accounts.models import User, normalize_email
from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a user (an integration acts as that user). Shown this once."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="email of the user the key acts as")
        parser.add_argument("--name", required=True, help="who uses it, e.g. 'CRM deposit hook'")

    def handle(self, *args, **options):
        user = User.objects.filter(email=normalize_email(options["user"]), is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {options['user']}")
        api_key, raw = api_key_create(user=user, name=options["name"])
        self.stderr.write(
            f"API key {api_key.prefix} for {user.email}: store it now, it is shown once."
        )
        self.stdout.write(raw)
