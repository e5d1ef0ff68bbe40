from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.health import doctor_checks, run_checks

# Backends that deliver nothing: with DEBUG off they are allowed only when EMAIL_BACKEND names
# them (settings refuse to start otherwise), and said here every time.
NOT_SENT = {
    "console": "printed to the worker's stdout and never sent: its log shows each one-time "
    "link with the token redacted (to try a link locally, deliver by api or qr)",
    "filebased": "written to files under EMAIL_FILE_PATH: one-time links land on disk",
    "locmem": "kept in memory and never sent",
    "dummy": "dropped: nobody gets them",
}


def email_in_use() -> tuple[bool, str]:
    """Which email backend sends (SMTP host, port, TLS), and whether it may warn."""
    backend = settings.EMAIL_BACKEND
    kind = backend.rsplit(".", 2)[-2] if backend.count(".") >= 2 else backend
    if kind == "smtp":
        tls = (
            "SSL" if settings.EMAIL_USE_SSL else "STARTTLS" if settings.EMAIL_USE_TLS else "no TLS"
        )
        user = f", user {settings.EMAIL_HOST_USER}" if settings.EMAIL_HOST_USER else ""
        return True, f"SMTP {settings.EMAIL_HOST}:{settings.EMAIL_PORT} ({tls}{user})"
    if kind in NOT_SENT:
        if settings.DEBUG:
            return True, f"{kind} backend (DEBUG): emails are {NOT_SENT[kind]}"
        return False, f"{kind} backend with DEBUG off: emails are {NOT_SENT[kind]}"
    return True, backend


class Command(BaseCommand):
    help = (
        "Check database, broker, cache, every gateway (and the MT5 Web API connection as `mt5 "
        "check` does, when configured), the beat schedule and the keys, and say which email "
        "backend sends; one line per check; exits non-zero when any fails."
    )

    def handle(self, *args, **options):
        results = run_checks(doctor_checks())
        for r in results:
            line = f"{'ok  ' if r.ok else 'FAIL'} {r.name:<14} {r.detail} ({r.ms} ms)"
            self.stdout.write(line if r.ok else self.style.ERROR(line))
        sends, detail = email_in_use()
        line = f"{'ok  ' if sends else 'WARN'} {'email':<14} {detail}"
        self.stdout.write(line if sends else self.style.WARNING(line))
        failed = [r.name for r in results if not r.ok]
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        self.stdout.write(self.style.SUCCESS("all checks passed"))
