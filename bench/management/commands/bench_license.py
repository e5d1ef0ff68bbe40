"""`manage.py bench_license`: the benchmark lives in `bench/license.py`; Django finds it here."""

from bench.license import Command

__all__ = ["Command"]
