"""`manage.py bench_signals`: the benchmark lives in `bench/signals.py`; Django finds it here."""

from bench.signals import Command

__all__ = ["Command"]
