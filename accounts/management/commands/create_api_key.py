from django.core.management.base import BaseCommand, CommandError

from accounts.models import User, normalize_email
from accounts.roles import API_KEY_SCOPES
from accounts.services import api_key_create
from core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Create an API key for a user (an integration acts as that user, with that user's "
        "roles). --scope grants an integration power on top: "
        + ", ".join(API_KEY_SCOPES)
        + ". The key is shown this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="email of the user the key acts as")
        parser.add_argument("--name", required=True, help="who uses it, e.g. 'CRM deposit hook'")
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            choices=API_KEY_SCOPES,
            help="an integration power to grant (repeatable): triggers (deposit, registration "
            "and promo-code triggers), demo (the demo pool and press passes), signals (signal "
            "intake)",
        )

    def handle(self, *args, **options):
        user = User.objects.filter(email=normalize_email(options["user"]), is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {options['user']}")
        try:
            # No actor: the operator at the command line grants, and the audit says "system".
            api_key, raw = api_key_create(user=user, name=options["name"], scopes=options["scope"])
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        scopes = ", ".join(api_key.scopes) or "none (the user's roles only)"
        self.stderr.write(
            f"API key {api_key.prefix} for {user.email}, scopes: {scopes}. "
            "Store it now, it is shown once."
        )
        self.stdout.write(raw)
