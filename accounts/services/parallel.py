"""Work shared out to a few threads, each on its own database connection.

Only on PostgreSQL and outside a transaction: another connection would not see the rows an
open transaction wrote (the tests' transactions included), and SQLite has one writer.
"""

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection, connections

Item = TypeVar("Item")
Result = TypeVar("Result")


def threads_for(wanted: int, items: int) -> int:
    """How many threads to use for `items` pieces of work: 1 means inline, in this thread."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, min(int(wanted), items))


def in_threads(items: Iterable[Item], work: Callable[[Item], Result], threads: int) -> list[Result]:
    """`work(item)` for every item, on `threads` threads each taking the next item when done;
    the results in the items' order. An error in one is raised here once all have run."""
    items = list(items)
    if threads <= 1:
        return [work(item) for item in items]
    results: list = [None] * len(items)
    pending = iter(enumerate(items))
    lock = threading.Lock()

    def drain() -> None:
        try:
            while True:
                with lock:
                    entry = next(pending, None)
                if entry is None:
                    return
                index, item = entry
                results[index] = work(item)
        finally:
            connections.close_all()  # this thread's connections: the thread ends here

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="brokerdesk") as pool:
        futures = [pool.submit(drain) for _ in range(threads)]
    for future in futures:
        future.result()
    return results
