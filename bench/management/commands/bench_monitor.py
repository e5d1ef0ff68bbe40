"""`manage.py bench_monitor`: the benchmark lives in `bench/monitor.py`; Django finds it here."""

from bench.monitor import Command

__all__ = ["Command"]
