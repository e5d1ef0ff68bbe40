"""The registered benchmarks: a list of `bench.Case`. Empty until a feature needs one."""

from bench import Case

CASES: list[Case] = []
