from django.core.management.base import BaseCommand, CommandError

from accounts.errors import ApplicationError
from accounts.services import login_lockout_unlock


class Command(BaseCommand):
    help = "Lift the login lockout of an email now (it also ends by itself after a while)."

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, **options):
        try:
            row = login_lockout_unlock(email=options["email"], actor=None)
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"unlocked {row.email}")
