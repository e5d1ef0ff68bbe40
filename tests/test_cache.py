"""The embedded default cache (core/cache.py) is one cache for every process of the machine:
what the worker writes the web reads, and a counter or a lock taken by several processes at
once counts each of them exactly once, keeping the window it was opened with."""

import multiprocessing
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import time_machine
from django.utils import timezone

from core.cache import FileCache

ROOT = Path(__file__).resolve().parent.parent
PROCESSES, ROUNDS = 4, 150


def _increment(directory: str, start, rounds: int) -> None:
    start.wait()
    shared = FileCache(directory, {})
    for _ in range(rounds):
        shared.incr("hits")


def _claim(directory: str, start, won) -> None:
    start.wait()
    if FileCache(directory, {}).add("sweep-lock", "mine", timeout=60):
        with won.get_lock():
            won.value += 1


def _race(target, *args) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=target, args=(*args[:1], start, *args[1:])) for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0


def test_counters_from_several_processes_at_once_lose_no_increment(tmp_path):
    FileCache(str(tmp_path), {}).set("hits", 0, timeout=None)

    _race(_increment, str(tmp_path), ROUNDS)

    assert FileCache(str(tmp_path), {}).get("hits") == PROCESSES * ROUNDS


def test_one_lock_for_several_processes_racing_for_it(tmp_path):
    won = multiprocessing.get_context("spawn").Value("i", 0)

    _race(_claim, str(tmp_path), won)

    assert won.value == 1
    assert FileCache(str(tmp_path), {}).get("sweep-lock") == "mine"


def test_an_increment_keeps_the_window_the_counter_was_opened_with(tmp_path):
    shared = FileCache(str(tmp_path), {"TIMEOUT": 300})
    with time_machine.travel(timezone.now(), tick=False) as clock:
        shared.add("logins", 0, timeout=60)
        clock.shift(timedelta(seconds=50))
        assert shared.incr("logins") == 1
        clock.shift(timedelta(seconds=11))
        assert shared.get("logins") is None  # the 60 s window ended, not 300 s after the incr


def test_a_counter_that_never_expires_stays_so_after_an_increment(tmp_path):
    shared = FileCache(str(tmp_path), {"TIMEOUT": 300})
    with time_machine.travel(timezone.now(), tick=False) as clock:
        shared.set("sweeps", 1, timeout=None)
        shared.incr("sweeps")
        clock.shift(timedelta(days=30))
        assert shared.get("sweeps") == 2


def test_without_redis_what_one_process_writes_another_reads(tmp_path):
    """The embedded default, as `make run` starts it: the web reads what the worker wrote."""
    environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    environment["CACHE_DIR"] = str(tmp_path)

    def shell(code: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()

    shell("from django.core.cache import cache; cache.set('monitor:probe', 'swept', None)")
    read = "from django.core.cache import cache; print(cache.get('monitor:probe'))"
    assert shell(read).splitlines()[-1] == "swept"
