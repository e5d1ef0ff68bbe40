"""`manage.py bench_pool`: the benchmark lives in `bench/pool.py`; Django finds it here."""

from bench.pool import Command

__all__ = ["Command"]
