"""`manage.py mt5_webapi_standin --port P [--host H] [--tls] [--time-offset-seconds N]
[--server demo]`: serve MetaQuotes' MT5 Manager Web API on the simulated MT5 server's state
until Ctrl-C. `--server demo` serves the broker's demo server instead (the demo pool's
accounts, its group MT5_DEMO_GROUP, the manager MT5_DEMO_MANAGER_LOGIN/PASSWORD).

The manager is `MT5_MANAGER_LOGIN` / `MT5_MANAGER_PASSWORD` (demo: `MT5_DEMO_MANAGER_*`)
unless `--manager-login` and `--manager-password` say otherwise. With `--tls` the
certificate is self-signed, made at start; its PEM file is printed so a client can trust or
pin it.
"""

import signal

from django.conf import settings
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
        parser.add_argument(
            "--server",
            choices=["live", "demo"],
            default="live",
            help="Which simulated server: the live one, or the broker's demo server.",
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
        login, password = options["manager_login"], options["manager_password"]
        if options["server"] == "demo":
            login = settings.MT5_DEMO_MANAGER_LOGIN if login is None else login
            password = settings.MT5_DEMO_MANAGER_PASSWORD if password is None else password
        try:
            server = MT5WebAPIStandIn(
                options["host"],
                options["port"],
                manager_login=login,
                manager_password=password,
                server=options["server"],
                tls=options["tls"],
                time_offset_seconds=options["time_offset_seconds"],
                groups=options["group"],
                denied_rights=options["deny_right"],
            )
        except OSError as exc:
            where = f"{options['host']}:{options['port']}"
            raise CommandError(f"cannot listen on {where}: {exc}") from exc
        if not server.manager_login or not server.manager_password:
            prefix = "MT5_DEMO" if options["server"] == "demo" else "MT5"
            self.stderr.write(
                f"{prefix}_MANAGER_LOGIN / {prefix}_MANAGER_PASSWORD are not set: every "
                "auth/start will be refused (1001)."
            )
        # honcho and service managers stop it with SIGTERM: stop as on Ctrl-C (the generated
        # certificate's folder is removed, the sessions hang up). Installed before the server
        # says where it is, so that a SIGTERM right after those lines is a clean stop too.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            self.stdout.write(
                f"MT5 Web API stand-in{' (demo server)' if server.server == 'demo' else ''} on "
                f"{server.url} "
                f"(manager {server.manager_login or '-'}, "
                f"server time UTC{server.time_offset_seconds:+d} s)"
            )
            if server.cafile:
                self.stdout.write(f"self-signed certificate: {server.cafile}")
            self.stdout.flush()
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("stopped")
        finally:
            server.stop()


def _interrupt(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
    raise KeyboardInterrupt
