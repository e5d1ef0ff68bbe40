"""The soak's report: Markdown, printed at the end and ready to paste into docs/reliability.md."""

from dataclasses import dataclass
from datetime import datetime

from .client import Tally
from .drain import Remaining
from .invariants import Check

# What the workload counted, in the order the report lists it (others follow, sorted).
TRAFFIC = [
    ("deposit", "deposits made on the MT5 server"),
    ("withdrawal", "withdrawals made on the MT5 server"),
    (
        "MT5 call refused by the fault knob (the soak retried)",
        "soak's MT5 deals refused by a fault",
    ),
    ("press pass", "press passes handed out at once (201)"),
    ("press pass queued (pool empty or demo server fault)", "press passes queued (202)"),
    ("press pass (after waiting in the queue)", "queued press passes later assigned"),
    ("press pass: 503 from the demo server, retried", "activations answered 503, retried"),
    ("link read from the Telegram outbox", "links read from the Telegram outbox"),
    ("reveal ok", "links revealed"),
    ("link revealed a second time", "links tried a second time"),
    ("link revealed by two at once", "links tried twice at the same moment"),
    ("validation", "license validations"),
    ("validation of an active key said not valid", "validations of an active key not valid"),
    ("signal", "signals sent"),
    ("signal trades created", "trades the signals created"),
]


@dataclass
class Run:
    """The facts of one run the report states."""

    tag: str
    started: datetime
    finished: datetime
    minutes: float
    error_rate: str
    latency_ms: int
    drain_seconds: float
    drained: Remaining  # what was left when the faults were turned off
    settle_seconds: float
    settled: Remaining  # what was left at the end
    setup: str
    product: str
    broker_flushed: bool | None = None
    webapi_faults: str = ""  # the Web API stand-in's own knobs, when MT5 was reached through it


def report_text(run: Run, tally: Tally, checks: list[Check]) -> str:
    """The whole report."""
    held = sum(1 for check in checks if check.held)
    lines = [
        f"### Soak `{run.tag}`: {held} of {len(checks)} invariants held",
        "",
        f"- When: {run.started:%Y-%m-%d %H:%M} to {run.finished:%H:%M} UTC; traffic for "
        f"{run.minutes:g} min, then {_drain(run)}",
        f"- Product: {run.product}.",
        f"- Faults: every simulated server (MT5, demo provisioning, broker, Telegram) failed "
        f"{_percent(run.error_rate)} of its calls with a transient error, each call "
        f"{run.latency_ms} ms late{run.webapi_faults}; the knobs were put back afterwards.",
        f"- Setup: {run.setup}.",
        *(
            [
                "- **The broker's Redis database was emptied by another process during the run** "
                "(a key the soak left there at the start was gone at the end): Celery messages "
                "queued at that moment were lost. What the product recovers by itself (beat's "
                "sweepers) shows below; what it does not is named in the drain line."
            ]
            if run.broker_flushed
            else []
        ),
        "",
        "What the workload did:",
        "",
        "| traffic | count |",
        "| --- | ---: |",
    ]
    events = dict(tally.events)
    for key, label in TRAFFIC:
        if events.get(key):
            lines.append(f"| {label} | {events.pop(key):,} |")
    for key in sorted(events):
        lines.append(f"| {key} | {events[key]:,} |")
    lines += ["", "Answers by endpoint:", "", *_endpoints(tally), "", "Invariants:", ""]
    lines += ["| invariant | result |", "| --- | --- |"]
    for check in checks:
        lines.append(f"| {check.name} | {'held' if check.held else 'FAILED'} |")
    for check in checks:
        lines += ["", f"**{check.name}: {'held' if check.held else 'FAILED'}.** {check.meaning}"]
        lines.append("")
        lines += [f"- {name}: {_value(value)}" for name, value in check.counts.items()]
        if not check.held:
            lines.append(f"- {check.problem_count} problem(s), for example:")
            lines += [f"  - {problem}" for problem in check.problems]
    return "\n".join(lines) + "\n"


def _drain(run: Run) -> str:
    under = f"{run.drain_seconds:.0f} s for the workers to drain with the faults still on"
    if not run.drained.total:
        return under + " (everything finished)."
    after = f"{run.settle_seconds:.0f} s more once they were off"
    end = "everything finished" if not run.settled.total else f"timed out: {run.settled} left"
    return f"{under} ({run.drained} left), and {after} ({end})."


def _endpoints(tally: Tally) -> list[str]:
    rows: dict[str, dict] = {}
    for (label, status), n in tally.statuses.items():
        row = rows.setdefault(label, {"n": 0, "2xx": 0, "4xx": 0, "5xx": 0, "none": 0, "other": 0})
        row["n"] += n
        if status is None:
            row["none"] += n
        elif status // 100 in (2, 4, 5):
            row[f"{status // 100}xx"] += n
        else:
            row["other"] += n
    lines = [
        "| endpoint | requests | 2xx | 4xx | 5xx | no answer | p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label in sorted(rows, key=lambda name: -rows[name]["n"]):
        row = rows[label]
        p50, p95 = tally.percentiles(label)
        lines.append(
            f"| `{label}` | {row['n']:,} | {row['2xx']:,} | {row['4xx']:,} | {row['5xx']:,} | "
            f"{row['none']:,} | {p50:.0f} | {p95:.0f} |"
        )
    return lines


def _percent(rate: str) -> str:
    return f"{float(rate) * 100:g}%"


def _value(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)
