from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts.services import monitor_discover, roles_sync
from accounts.services.demo_data import DEMO_USERS, demo_users_ensure


class Command(BaseCommand):
    help = (
        "Make this installation ready: migrate, role groups, and (only with DEBUG on) the local "
        "demo users and the simulated MT5 accounts. Safe to run again."
    )

    def handle(self, *args, **options):
        (settings.VAR_DIR).mkdir(exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("migrations applied")
        roles_sync()
        self.stdout.write("role groups in step with the role table")
        if not settings.DEBUG:
            self.stdout.write("DEBUG is off: no demo users, no demo accounts")
            return
        created = demo_users_ensure()
        self.stdout.write(
            f"demo users: {created} created, {len(DEMO_USERS) - created} already there"
        )
        from gateways.mt5.simulated import seed_demo_accounts

        accounts = seed_demo_accounts()
        self.stdout.write(f"simulated MT5 accounts: {accounts} created")
        if settings.MT5_GATEWAY.startswith("gateways.mt5.simulated."):
            # Watched from the first second of `make run`, not after discovery's first minute.
            self.stdout.write(f"monitored accounts: {monitor_discover()} registered")
