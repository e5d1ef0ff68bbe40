"""Load generator of `manage.py bench_license`, run as its own process (stdlib only).

Run as `python -m licensing.bench_client` (as a script, licensing/selectors.py would shadow
the standard library's). Reads {"port", "path", "bodies", "seconds", "threads"} as JSON on
stdin; each thread keeps one HTTP/1.1 keep-alive connection and POSTs the bodies round-robin
until the time is up.
Writes {"elapsed", "latencies_ms", "statuses", "codes", "errors"} as JSON on stdout.
"""

import http.client
import json
import sys
import threading
import time
from collections import Counter


def _worker(port, path, bodies, offset, deadline, out):
    latencies, statuses, codes, errors = [], Counter(), Counter(), 0
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = offset
    n = len(bodies)
    clock = time.perf_counter
    while clock() < deadline:
        body = bodies[i % n]
        i += 1
        began = clock()
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        latencies.append((clock() - began) * 1000)
        statuses[response.status] += 1
        at = data.find(b'"code":"')
        if at >= 0:
            codes[data[at + 8 : data.find(b'"', at + 8)].decode()] += 1
        if response.will_close:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    out.append((latencies, statuses, codes, errors))


def run(port, path, bodies, seconds, threads):
    encoded = [body.encode() for body in bodies]
    results: list = []
    began = time.perf_counter()
    deadline = began + seconds
    workers = [
        threading.Thread(
            target=_worker,
            args=(port, path, encoded, k * len(encoded) // threads, deadline, results),
        )
        for k in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
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
    }


if __name__ == "__main__":
    job = json.load(sys.stdin)
    json.dump(run(**job), sys.stdout)
