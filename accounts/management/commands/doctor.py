from django.core.management.base import BaseCommand, CommandError

from accounts.health import DOCTOR_CHECKS, run_checks


class Command(BaseCommand):
    help = (
        "Check database, broker, cache, every gateway, the beat schedule and the keys; one line "
        "per check; exits non-zero when any fails."
    )

    def handle(self, *args, **options):
        results = run_checks(DOCTOR_CHECKS)
        for r in results:
            line = f"{'ok  ' if r.ok else 'FAIL'} {r.name:<14} {r.detail} ({r.ms} ms)"
            self.stdout.write(line if r.ok else self.style.ERROR(line))
        failed = [r.name for r in results if not r.ok]
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        self.stdout.write(self.style.SUCCESS("all checks passed"))
