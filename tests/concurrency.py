"""Real concurrency for tests on PostgreSQL: threads released together, each on its own
database connection (closed when its work ends)."""

import threading

from django.db import connection


def run_at_once(work, threads: int) -> tuple[list, list]:
    """Run `work(n)` for n in range(threads), all released at once; return (results, errors)."""
    start = threading.Barrier(threads)
    results, errors = [], []

    def one(n):
        try:
            start.wait(timeout=20)
            results.append(work(n))
        except Exception as exc:  # reported by the test, in the main thread
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=one, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return results, errors
