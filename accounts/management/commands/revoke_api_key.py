from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey
from accounts.services import api_key_revoke
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the part before the dot)."

    def add_arguments(self, parser):
        parser.add_argument("prefix")
        parser.add_argument("--reason", default="")

    def handle(self, *args, **options):
        api_key = ApiKey.objects.filter(prefix=options["prefix"]).first()
        if api_key is None:
            raise CommandError(f"no API key with prefix {options['prefix']}")
        try:
            api_key_revoke(api_key=api_key, reason=options["reason"])
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"revoked {api_key.prefix} ({api_key.name})")
