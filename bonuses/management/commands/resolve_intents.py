from django.core.management.base import BaseCommand

from bonuses.services import intents_resolve


class Command(BaseCommand):
    help = "Finish credit writes left pending or unknown now (what the beat task does)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=200, help="Operations to take.")

    def handle(self, *args, limit=200, **options):
        counts = intents_resolve(limit=limit)
        self.stdout.write(", ".join(f"{key} {value}" for key, value in counts.items()))
