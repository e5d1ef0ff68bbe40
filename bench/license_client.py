"""Load generator of `manage.py bench_license`, run as its own process (stdlib only).

Run as `python -m bench.license_client` (as a script, its folder would come first on
sys.path, where a module named like one of the standard library's would shadow it). Reads
{"port", "path", "bodies", "seconds", "threads", "workers"} as JSON on stdin; each thread keeps
one HTTP/1.1 keep-alive connection and POSTs the bodies round-robin until the time is up.

The connections are spread evenly over the server's worker processes before the clock starts:
the kernel hands a new connection to whichever worker accepts first, and two keep-alive
connections on one worker leave the other idle for the whole run. The bench server names its
worker in `X-Bench-Worker` (bench/license_middleware.py); a connection that lands on a worker
that has its share already is closed and opened again.

Writes {"elapsed", "latencies_ms", "statuses", "codes", "errors", "client_cpu", "spread",
"reconnects", "probes"} as JSON on stdout (`client_cpu`: this process's own CPU seconds over
the run; `spread`: connections per worker; `probes`: requests made to spread them, untimed).
"""

import http.client
import json
import math
import sys
import threading
import time
from collections import Counter

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
WORKER_HEADER = "X-Bench-Worker"


def _connect(port) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def _spread(port, path, body, threads, workers, tries=50) -> tuple[list, Counter, int, int]:
    """`threads` open connections, at most ceil(threads / workers) on any one worker; also
    how many were opened again, and how many requests that took (probes)."""
    share = math.ceil(threads / max(1, workers))
    kept: list[http.client.HTTPConnection] = []
    spread: Counter[str] = Counter()
    reconnects, probes = 0, 0
    for _ in range(threads * tries):
        if len(kept) == threads:
            break
        conn = _connect(port)
        try:
            conn.request("POST", path, body, HEADERS)
            response = conn.getresponse()
            response.read()
            probes += 1
            worker = response.getheader(WORKER_HEADER, "unknown")
        except (OSError, http.client.HTTPException):
            conn.close()
            reconnects += 1
            continue
        if worker == "unknown" or spread[worker] < share:
            spread[worker] += 1
            kept.append(conn)
        else:
            conn.close()
            reconnects += 1
    while len(kept) < threads:  # could not spread them (or nothing answers): take what comes
        kept.append(_connect(port))
        spread["unchecked"] += 1
    return kept, spread, reconnects, probes


def _worker(conn, port, path, bodies, offset, deadline, out):
    latencies, statuses, codes, errors = [], Counter(), Counter(), 0
    i = offset
    n = len(bodies)
    clock = time.perf_counter
    while clock() < deadline:
        body = bodies[i % n]
        i += 1
        began = clock()
        try:
            conn.request("POST", path, body, HEADERS)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = _connect(port)
            continue
        latencies.append((clock() - began) * 1000)
        statuses[response.status] += 1
        at = data.find(b'"code":"')
        if at >= 0:
            codes[data[at + 8 : data.find(b'"', at + 8)].decode()] += 1
        if response.will_close:
            conn.close()
            conn = _connect(port)
    conn.close()
    out.append((latencies, statuses, codes, errors))


def run(port, path, bodies, seconds, threads, workers=1):
    encoded = [body.encode() for body in bodies]
    connections, spread, reconnects, probes = _spread(port, path, encoded[0], threads, workers)
    results: list = []
    cpu = time.process_time()
    began = time.perf_counter()
    deadline = began + seconds
    runners = [
        threading.Thread(
            target=_worker,
            args=(conn, port, path, encoded, k * len(encoded) // threads, deadline, results),
        )
        for k, conn in enumerate(connections)
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu
    latencies, statuses, codes, errors = [], Counter(), Counter(), 0
    for lat, st, co, er in results:
        latencies += lat
        statuses.update(st)
        codes.update(co)
        errors += er
    return {
        "elapsed": elapsed,
        "latencies_ms": latencies,
        "statuses": {str(k): v for k, v in statuses.items()},
        "codes": dict(codes),
        "errors": errors,
        "client_cpu": cpu,
        "spread": dict(spread),
        "reconnects": reconnects,
        "probes": probes,
    }


if __name__ == "__main__":
    job = json.load(sys.stdin)
    json.dump(run(**job), sys.stdout)
