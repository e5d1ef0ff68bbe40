"""Benchmarks: `make bench`. Speed is measured here, never in timed tests.

The harness, outside every domain app: it may import any of them, none imports it. Two kinds:

- cases (`bench/cases.py`, run by `python -m bench`): a case pairs the code under test with a
  baseline measured in the same run on the same machine (this one is noisy): medians and their
  ratio are what to quote;
- whole-product runs, one module each, started as `manage.py bench_<name>` (the commands in
  `bench/management/commands/` only point Django at them): `monitor.py` (the monitor's sweep),
  `pool.py` (press-pass activations under load), `license.py` with `license_client.py`,
  `license_settings.py`, `license_urls.py` and `license_middleware.py` (license validation
  over HTTP), `signals.py` (one signal to many sessions).
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[], object]
    baseline: Callable[[], object] | None = None
    repeat: int = 7


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)
