"""`manage.py sessions list [--user EMAIL] [--active]` and
`manage.py sessions stop --user EMAIL | --all`."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from trading_sessions.models import TradingSession
from trading_sessions.services import sessions_stop

COLUMNS = "{id:>8}  {user:32}  {name:24}  {active:6}  {net:>12}  {trades:>7}  {reason}"


class Command(BaseCommand):
    help = "Trading sessions: list them, or stop a user's (or everyone's) running sessions."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Sessions with their run stats, by id.")
        listing.add_argument("--user", metavar="EMAIL", help="Only this user's sessions.")
        listing.add_argument("--active", action="store_true", help="Only running sessions.")
        stop = sub.add_parser("stop", help="Stop running sessions (reason: operator).")
        stop.add_argument("--user", metavar="EMAIL", help="Stop this user's sessions.")
        stop.add_argument("--all", action="store_true", help="Stop every running session.")

    def handle(self, *args, action, **options):
        if action == "list":
            self.do_list(user=options["user"], active=options["active"])
        else:
            self.do_stop(user=options["user"], everyone=options["all"])

    def _user(self, email: str):
        user = get_user_model().objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with the email {email!r}.")
        return user

    def do_list(self, *, user: str | None, active: bool) -> None:
        sessions = TradingSession.objects.select_related("user").order_by("pk")
        if user:
            sessions = sessions.filter(user=self._user(user))
        if active:
            sessions = sessions.filter(is_active=True)
        self.stdout.write(
            COLUMNS.format(
                id="id",
                user="user",
                name="name",
                active="active",
                net="net profit",
                trades="trades",
                reason="stop reason",
            )
        )
        shown = 0
        for session in sessions.iterator():
            shown += 1
            self.stdout.write(
                COLUMNS.format(
                    id=session.pk,
                    user=session.user.email[:32],
                    name=session.session_name[:24],
                    active="yes" if session.is_active else "no",
                    net=str(session.net_profit),
                    trades=session.total_trades,
                    reason=session.stop_reason or "-",
                )
            )
        self.stdout.write(f"{shown} session(s)")

    def do_stop(self, *, user: str | None, everyone: bool) -> None:
        if bool(user) == everyone:
            raise CommandError("Give either --user EMAIL or --all.")
        owner = self._user(user) if user else None
        stopped = sessions_stop(user=owner, reason=TradingSession.StopReason.OPERATOR)
        whose = f"of {owner.email}" if owner else "of all users"
        self.stdout.write(f"stopped {stopped} session(s) {whose}")
