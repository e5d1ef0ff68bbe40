"""Run every registered benchmark; print median times and the ratio to each baseline."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> int:
    import django

    django.setup()
    from bench import median_seconds
    from bench.cases import CASES

    if not CASES:
        print("no benchmarks registered yet")
        return 0
    for case in CASES:
        measured = median_seconds(case.run, case.repeat)
        line = f"{case.name:<40} median {measured * 1000:9.2f} ms"
        if case.baseline is not None:
            base = median_seconds(case.baseline, case.repeat)
            line += f"   baseline {base * 1000:9.2f} ms   ratio {measured / base:6.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
