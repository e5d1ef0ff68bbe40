"""Benchmarks: `make bench`. Speed is measured here, never in timed tests.

A case pairs the code under test with a baseline measured in the same run on the same
machine (this one is noisy): medians and their ratio are what to quote.
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
