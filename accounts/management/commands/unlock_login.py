import ipaddress

from django.core.management.base import BaseCommand, CommandError

from accounts.login_throttle import admin_login_limit_clear
from accounts.services import audit_record, login_lockout_unlock
from core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Lift the login lockout of an email now (it also ends by itself after a while); with "
        "--address, also forget the failed admin logins counted for that client address."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", nargs="?")
        parser.add_argument(
            "--address", help="a client address whose admin login limit to clear, e.g. 10.0.0.7"
        )

    def handle(self, *args, **options):
        if not options["email"] and not options["address"]:
            raise CommandError("Name an email, an --address, or both.")
        if options["email"]:
            try:
                row = login_lockout_unlock(email=options["email"], actor=None)
            except ApplicationError as exc:
                raise CommandError(exc.detail) from exc
            self.stdout.write(f"unlocked {row.email}")
        if options["address"]:
            address = options["address"]
            try:
                address = str(ipaddress.ip_address(address))
            except ValueError as exc:
                raise CommandError(f"{address!r} is not an IP address.") from exc
            admin_login_limit_clear(address=address)
            audit_record(
                action="login.address_unlocked",
                object_type="client_address",
                object_id=address,
                actor=None,
            )
            self.stdout.write(f"cleared the admin login limit of {address}")
