"""`manage.py mt5 check [--demo] [--timeout S]`: connect to the MT5 server the product is
configured for, shake hands and report the server's versions, its time offset, the groups and
logins the manager sees and which of the rights the product needs are missing or could not be
probed (see `gateways.mt5.webapi.check`).

Exit status: 0 when the check passed, or when there is nothing to check (the simulated
gateway; `--demo` without MT5_DEMO_URL); 1 with a one-line error when it cannot connect or log
in, when a needed right is known to be missing, or when the configured time offset is wrong.
"""

from django.core.management.base import BaseCommand, CommandError

from gateways.mt5.webapi.check import NotConfigured, check, demo_connection, live_connection


class Command(BaseCommand):
    help = "Operate the MT5 connection: `mt5 check [--demo]` checks the Web API connection."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="check")
        checking = actions.add_parser(
            "check",
            help="Connect, shake hands, print version, time offset, groups, logins, rights.",
        )
        checking.add_argument(
            "--demo",
            action="store_true",
            help="Check the demo server (MT5_DEMO_URL, MT5_DEMO_MANAGER_*, MT5_DEMO_GROUP).",
        )
        checking.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="Seconds per request (default MT5_REQUEST_TIMEOUT_SECONDS).",
        )

    def handle(self, *args, **options):
        if options["timeout"] is not None and options["timeout"] <= 0:
            raise CommandError("--timeout must be a positive number of seconds")
        pick = demo_connection if options["demo"] else live_connection
        try:
            connection = pick(timeout=options["timeout"])
        except NotConfigured as exc:
            self.stdout.write(str(exc))
            return
        report = check(connection)
        for line in report.lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError(f"{connection.label} check failed: {report.verdict()}")
        if report.not_probed:
            self.stdout.write(
                self.style.SUCCESS(f"{connection.label} check passed. ")
                + "Not probed (ask the MT5 administrator to confirm): "
                + ", ".join(report.not_probed)
                + "."
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"{connection.label} check passed."))
