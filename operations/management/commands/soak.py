"""`manage.py soak --minutes M`: drive the running product under faults, then check it.

Starts nothing: web, worker and beat must run already (`make soak` starts them on PostgreSQL
and Redis and passes their logs with `--logs`). Exit status 1 when an invariant failed.
"""

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import redis
import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from operations.soak.client import Api, Tally
from operations.soak.drain import drain
from operations.soak.invariants import Scope, check_http, checks_run
from operations.soak.latency import check_deposit_delays
from operations.soak.report import Run, report_text
from operations.soak.scan import dump_database, log_files, scan, server_keys
from operations.soak.workload import DEPOSIT_COMMENT, Workload
from operations.soak.world import (
    MIN_DEPOSIT,
    SetupError,
    knobs_restore,
    knobs_turn_on,
    world_build,
    world_close,
)


class Command(BaseCommand):
    help = (
        "Drive the running product (web, worker, beat) for --minutes with a realistic mix while "
        "the simulated servers fail, let the workers drain, check the invariants, scan a dump "
        "and the logs for secrets, and print a report. Exit status 1 if an invariant failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--minutes", type=float, default=5.0, help="Traffic time (5).")
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="Where web answers."
        )
        parser.add_argument(
            "--error-rate", default="0.2", help="Share of simulated calls that fail (0.2)."
        )
        parser.add_argument(
            "--latency-ms", type=int, default=50, help="Added to every simulated call (50)."
        )
        parser.add_argument(
            "--forbidden-rate",
            default="0.05",
            help="MT5 Web API stand-in: share of calls answered 403, the session forgotten (0.05).",
        )
        parser.add_argument(
            "--drop-rate",
            default="0.05",
            help="MT5 Web API stand-in: share of calls whose connection drops after the work "
            "is done (0.05).",
        )
        parser.add_argument("--rate", type=float, default=1.0, help="Traffic multiplier (1).")
        parser.add_argument("--accounts", type=int, default=30, help="MT5 accounts (30).")
        parser.add_argument("--licenses", type=int, default=20, help="Licenses (20).")
        parser.add_argument("--clients", type=int, default=6, help="Trading clients (6).")
        parser.add_argument("--pool", type=int, default=40, help="Demo accounts to warm (40).")
        parser.add_argument(
            "--drain-timeout",
            type=float,
            default=300.0,
            help="Seconds to let the workers drain with the faults still on (300).",
        )
        parser.add_argument(
            "--settle-timeout",
            type=float,
            default=300.0,
            help="Then seconds to wait with the faults off for what is left (300).",
        )
        parser.add_argument(
            "--logs",
            action="append",
            default=[],
            help="A log file, or a folder of *.log, to scan for secrets (repeatable).",
        )
        parser.add_argument("--report", help="Also write the report to this file.")
        parser.add_argument("--product", default="", help="How the product runs (for the report).")
        parser.add_argument("--seed", type=int, default=None, help="Seed of the traffic's choices.")
        parser.add_argument(
            "--grant-within",
            type=float,
            default=10.0,
            help="Seconds within which every deposit must be granted under the faults (10).",
        )

    def handle(self, *args, **options):
        base_url = options["base_url"].rstrip("/")
        self._ready(base_url)
        tally = Tally()
        api = Api(base_url, tally)
        started = timezone.now()
        tag = datetime.now(UTC).strftime("s%y%m%d%H%M%S")
        sentinel = BrokerSentinel(tag)
        self.say(f"soak {tag}: setting up (faults off)")
        try:
            world = world_build(
                api,
                tag=tag,
                accounts=options["accounts"],
                licenses=options["licenses"],
                clients=options["clients"],
                pool=options["pool"],
                say=self.say,
            )
        except SetupError as exc:
            raise CommandError(f"setup failed: {exc}") from exc
        error_rate = Decimal(options["error_rate"])
        forbidden_rate, drop_rate = (
            Decimal(options["forbidden_rate"]),
            Decimal(options["drop_rate"]),
        )
        workload = Workload(world=world, base_url=base_url, tally=tally, rate=options["rate"])
        scope = Scope(
            since=started,
            campaign_ids=[world.campaign_id],
            logins=world.logins,
            deposit_comment=DEPOSIT_COMMENT,
            min_deposit=MIN_DEPOSIT,
            session_ids=world.session_ids,
            broker_emails=world.broker_emails,
            press_pass_prefix=f"pp-{tag}-",
        )
        try:
            knobs_turn_on(
                world,
                error_rate=error_rate,
                latency_ms=options["latency_ms"],
                forbidden_rate=forbidden_rate,
                drop_rate=drop_rate,
            )
            self.say(
                f"faults on: {error_rate} of simulated calls fail, {options['latency_ms']} ms "
                f"late (MT5 Web API stand-in: also {forbidden_rate} answered 403, {drop_rate} "
                f"dropped after the work); traffic for {options['minutes']:g} min"
            )
            workload.run(options["minutes"] * 60, say=self.say)
            self.say(f"traffic stopped: {workload.progress()}; draining (faults still on)")
            what = {
                "logins": world.logins,
                "tickets": [deal.ticket for deal in workload.seen.deals],
                "session_ids": world.session_ids,
                "since": started,
                "press_pass_prefix": scope.press_pass_prefix,
                "channel": world.channel,
            }
            left, waited = drain(timeout=options["drain_timeout"], say=self.say, **what)
        finally:
            knobs_restore(world)
        settled, settle_waited = left, 0.0
        if left.total:
            self.say(f"after {waited:.0f} s under faults: {left} left; faults off, waiting")
            settled, settle_waited = drain(timeout=options["settle_timeout"], say=self.say, **what)
        self.say(f"drained ({settled} left); checking")
        checks = [*checks_run(scope, workload.seen.view), check_http(tally)]
        checks.insert(1, check_deposit_delays(scope, within=options["grant_within"]))
        checks.append(self._scan(world, workload, tag, options["logs"]))
        try:
            world_close(Api(base_url, Tally()), world)
        except SetupError as exc:
            self.stderr.write(f"could not end the campaign and stop the sessions: {exc}")
        run = Run(
            tag=tag,
            started=started,
            finished=timezone.now(),
            minutes=options["minutes"],
            error_rate=str(error_rate),
            latency_ms=options["latency_ms"],
            drain_seconds=waited,
            drained=left,
            settle_seconds=settle_waited,
            settled=settled,
            setup=(
                f"{len(world.logins)} MT5 accounts watched by the monitor, one Type B deposit "
                f"campaign, {len(world.license_keys)} licenses, {len(world.clients)} clients "
                f"each with a running gale session on one signal channel, a warm demo pool"
            ),
            product=options["product"] or self._product(base_url),
            broker_flushed=sentinel.gone(),
            webapi_faults=(
                f"; the MT5 Web API stand-in also answered {_percent(forbidden_rate)} of its "
                f"calls HTTP 403 (session forgotten) and dropped the connection after the work "
                f"on {_percent(drop_rate)}"
                if settings.MT5_GATEWAY.endswith("WebApiMT5Gateway")
                else ""
            ),
        )
        text = report_text(run, tally, checks)
        self.stdout.write("")
        self.stdout.write(text)
        if options["report"]:
            Path(options["report"]).write_text(text)
        failed = [check.name for check in checks if not check.held]
        if failed:
            raise CommandError(f"{len(failed)} invariant(s) failed: {', '.join(failed)}")

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _ready(self, base_url: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.get(f"{base_url}/readyz", timeout=5)
                if answer.status_code == 200:
                    return
                problem = f"HTTP {answer.status_code} {answer.text[:200]}"
            except requests.RequestException as exc:
                problem = type(exc).__name__
            if time.monotonic() > deadline:
                raise CommandError(
                    f"the product does not answer at {base_url}/readyz ({problem}): start web, "
                    "worker and beat first (make run), or run make soak"
                )
            time.sleep(2)

    def _scan(self, world, workload, tag: str, logs: list[str]):
        seen = workload.seen
        secrets = dict(world.secrets)
        secrets["JWT tokens"] = secrets.get("JWT tokens", set()) | seen.jwts
        secrets["revealed demo passwords"] = set(seen.passwords)
        secrets["one-time link tokens"] = set(seen.tokens_seen)
        secrets["server keys"] = server_keys()
        dump = Path(settings.VAR_DIR) / "soak" / f"{tag}-dump.sql"
        self.say("dumping the database and searching it and the logs")
        how = dump_database(dump)
        try:
            return scan(secrets, dump=dump, logs=log_files(logs), how=how)
        finally:
            dump.unlink(missing_ok=True)

    def _product(self, base_url: str) -> str:
        cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
        return f"web at {base_url}, worker and beat, on {connection.vendor} with {cache}"


def _percent(rate: Decimal) -> str:
    return f"{float(rate) * 100:g}%"


class BrokerSentinel:
    """A key left in the broker's Redis database for the length of the run: gone at the end
    means something else emptied that database (another process's FLUSHDB), and with it the
    Celery messages queued at that moment: the report says so."""

    def __init__(self, tag: str) -> None:
        self.client = None
        self.key = f"soak:{tag}:sentinel"
        url = getattr(settings, "CELERY_BROKER_URL", "") or ""
        if not url.startswith(("redis://", "rediss://")):
            return
        try:
            self.client = redis.Redis.from_url(url, socket_timeout=5)
            self.client.set(self.key, "1", ex=24 * 3600)
        except redis.RedisError:
            self.client = None

    def gone(self) -> bool | None:
        """True: emptied during the run; None: not a Redis broker, or it did not answer."""
        if self.client is None:
            return None
        try:
            present = bool(self.client.exists(self.key))
            self.client.delete(self.key)
        except redis.RedisError:
            return None
        return not present
