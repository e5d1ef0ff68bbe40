from django.core.management.base import BaseCommand

from bonuses.models import CreditIntent
from bonuses.services import credit_reconcile


class Command(BaseCommand):
    help = (
        "Compare the credit ledger with the MT5 server's credit per account and print the "
        "accounts that drift. Changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--login",
            type=int,
            action="append",
            dest="logins",
            help="Check only this login (repeatable). Default: every login in the ledger.",
        )

    def handle(self, *args, logins=None, **options):
        drifts = credit_reconcile(logins=logins)
        for drift in drifts:
            self.stdout.write(
                f"{drift.login}: ledger {drift.ledger_credit} server {drift.server_credit} "
                f"drift {drift.drift:+}"
            )
        open_intents = CreditIntent.objects.filter(
            status__in=[CreditIntent.Status.PENDING, CreditIntent.Status.UNKNOWN]
        )
        if logins:
            open_intents = open_intents.filter(login__in=logins)
        open_count = open_intents.count()
        self.stdout.write(
            f"{len(drifts)} account(s) with drift"
            + (f"; {open_count} write(s) still pending or unknown" if open_count else "")
        )
