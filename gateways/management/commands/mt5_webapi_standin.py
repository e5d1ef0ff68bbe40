"""`manage.py mt5_webapi_standin --port P [--host H] [--tls] [--time-offset-seconds N]`:
serve MetaQuotes' MT5 Manager Web API on the simulated MT5 server's state until Ctrl-C.

The manager is `MT5_MANAGER_LOGIN` / `MT5_MANAGER_PASSWORD` unless `--manager-login` and
`--manager-password` say otherwise. With `--tls` the certificate is self-signed, made at
start; its PEM file is printed so a client can trust or pin it.
"""

from django.core.management.base import BaseCommand, CommandError

from gateways.mt5.webapi.client import RIGHTS
from gateways.mt5.webapi.standin import MT5WebAPIStandIn


class Command(BaseCommand):
    help = "Serve the MT5 Manager Web API (a faithful stand-in) on the simulated MT5 server."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--tls", action="store_true", help="HTTPS, self-signed certificate.")
        parser.add_argument(
            "--time-offset-seconds",
            type=int,
            default=None,
            help="How far the trade server's clock is ahead of UTC (deal times, time/server).",
        )
        parser.add_argument("--manager-login", default=None)
        parser.add_argument("--manager-password", default=None)
        parser.add_argument(
            "--group",
            action="append",
            default=[],
            help="A group that exists even with no account in it (repeatable), e.g. demo\\\\new.",
        )
        parser.add_argument(
            "--deny-right",
            action="append",
            default=[],
            choices=sorted(set(RIGHTS.values())),
            help="A manager right the manager lacks (repeatable): its calls answer retcode 8.",
        )

    def handle(self, *args, **options):
        try:
            server = MT5WebAPIStandIn(
                options["host"],
                options["port"],
                manager_login=options["manager_login"],
                manager_password=options["manager_password"],
                tls=options["tls"],
                time_offset_seconds=options["time_offset_seconds"],
                groups=options["group"],
                denied_rights=options["deny_right"],
            )
        except OSError as exc:
            where = f"{options['host']}:{options['port']}"
            raise CommandError(f"cannot listen on {where}: {exc}") from exc
        if not server.manager_login or not server.manager_password:
            self.stderr.write(
                "MT5_MANAGER_LOGIN / MT5_MANAGER_PASSWORD are not set: every auth/start "
                "will be refused (1001)."
            )
        self.stdout.write(
            f"MT5 Web API stand-in on {server.url} (manager {server.manager_login or '-'}, "
            f"server time UTC{server.time_offset_seconds:+d} s)"
        )
        if server.cafile:
            self.stdout.write(f"self-signed certificate: {server.cafile}")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("stopped")
        finally:
            server.stop()
