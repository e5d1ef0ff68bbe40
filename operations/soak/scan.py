"""After the soak: a dump of the database and the processes' logs, searched for every secret
the soak made or saw (passwords, keys, tokens, the revealed credentials, the server's keys).

The dump is `pg_dump --data-only` on PostgreSQL (`dumpdata` elsewhere). The simulated Telegram
server's outbox is left out of it: it stands for Telegram's servers, where a link sent by
Telegram does live. The dump is deleted once searched. A hit is reported by kind and place
(table, or log file and line), never with the secret itself.
"""

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection

from .invariants import Check

OUTSIDE_TABLES = ["gateways_simulatedtelegrammessage"]
MIN_LENGTH = 12  # shorter values would match by chance


def server_keys() -> set[str]:
    """The installation's own keys: none of them belongs in a row or a log line."""
    values = {
        settings.SECRET_KEY,
        getattr(settings, "LICENSE_KEY_PEPPER", ""),
        getattr(settings, "LICENSE_SIGNING_KEY", ""),
        getattr(settings, "AUDIT_CHAIN_KEY", ""),
        settings.SIMPLE_JWT.get("SIGNING_KEY", ""),
        getattr(settings, "METRICS_TOKEN", ""),
        getattr(settings, "MT5_MANAGER_PASSWORD", ""),
    }
    for entry in (getattr(settings, "ENCRYPTION_KEYS", "") or "").split(","):
        values.add(entry.split(":", 1)[-1].strip())
    return {value for value in values if value}


def dump_database(path: Path) -> str:
    """Write a dump of every table's rows to `path`; returns how it was made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
        command = ["pg_dump", "--data-only", "--no-owner", "--file", str(path)]
        command += [f"--exclude-table-data={table}" for table in OUTSIDE_TABLES]
        command += ["--host", str(db.get("HOST") or "127.0.0.1")]
        command += ["--port", str(db.get("PORT") or 5432)]
        command += ["--username", str(db.get("USER") or "postgres"), str(db["NAME"])]
        try:
            subprocess.run(  # noqa: S603 - our own fixed command
                command, env=env, check=True, capture_output=True, timeout=600
            )
            return "pg_dump --data-only"
        except (OSError, subprocess.SubprocessError):
            pass  # no pg_dump here, or another version: Django's own dump holds the same rows
    call_command(
        "dumpdata",
        output=str(path),
        exclude=["gateways.simulatedtelegrammessage"],
        verbosity=0,
    )
    return "manage.py dumpdata"


def log_files(paths: Iterable[str]) -> list[Path]:
    """The files named, and the *.log files in the folders named."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(path.glob("*.log"))
        elif path.is_file():
            found.append(path)
    return found


def scan(
    secrets: dict[str, set[str]], *, dump: Path | None, logs: list[Path], how: str = ""
) -> Check:
    """Search the dump and the logs for every secret; a hit is a problem."""
    check = Check(
        "no secret in the dump or the logs",
        "A dump of the database (the simulated Telegram outbox aside) and the logs of web, "
        "worker and beat hold none of the passwords, keys, tokens and revealed credentials the "
        "soak made or saw, nor the installation's own keys.",
    )
    wanted = {
        kind: {value for value in values if value and len(value) >= MIN_LENGTH}
        for kind, values in secrets.items()
    }
    places: list[tuple[str, str, bool]] = []
    if dump is not None and dump.exists():
        text = dump.read_text(encoding="utf-8", errors="replace")
        places.append((f"dump ({how})", text, True))
    for path in logs:
        places.append(
            (f"log {path.name}", path.read_text(encoding="utf-8", errors="replace"), False)
        )
    for place, text, is_dump in places:
        for kind, values in wanted.items():
            for value in values:
                at = text.find(value)
                if at >= 0:
                    where = _table(text, at) if is_dump else _line(text, at)
                    check.problem(f"{kind} ({_hint(value)}) in the {place}: {where}")
    sizes = sum(len(text) for _place, text, _is_dump in places)
    check.counts = {
        "secrets searched": sum(len(values) for values in wanted.values()),
        "of which": ", ".join(f"{kind} {len(values)}" for kind, values in wanted.items()),
        "searched": ", ".join(place for place, _text, _is_dump in places) or "nothing",
        "characters searched": f"{sizes:,}",
    }
    if dump is None or not dump.exists():
        check.problem("no database dump to search")
    if not logs:
        check.counts["logs"] = "none given (run through `make soak` to search them)"
    return check


def _hint(value: str) -> str:
    return f"{value[:4]}..., {len(value)} characters"


def _table(text: str, at: int) -> str:
    """The table a dump line belongs to: pg_dump's COPY header, or dumpdata's model."""
    copy = text.rfind("\nCOPY ", 0, at)
    if copy >= 0:
        return "table " + text[copy + 6 : text.find(" ", copy + 6)]
    model = text.rfind('"model": "', 0, at)
    if model >= 0:
        return "model " + text[model + 10 : text.find('"', model + 10)]
    return f"offset {at}"


def _line(text: str, at: int) -> str:
    return f"line {text.count(chr(10), 0, at) + 1}"
