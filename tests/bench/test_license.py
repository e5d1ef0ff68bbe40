"""The bench's own pieces (the timed run itself is `make bench`, never a test)."""

from django.urls import resolve, reverse

from bench.license import _bodies, _percentile, _with_db_name
from bench.license_client import run


def test_the_bench_urlconf_adds_the_trivial_view_and_keeps_validation(client, settings):
    settings.ROOT_URLCONF = "bench.license_urls"
    assert reverse("bench-trivial") == "/api/v1/bench/trivial/"
    assert resolve("/api/v1/licenses/validate/").url_name == "license-validate"
    response = client.post("/api/v1/bench/trivial/", {}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "code": "TRIVIAL"}


def test_helpers():
    bodies = _bodies({"VALID": ["a", "b"], "NOT_FOUND": ["c", "d"]})
    assert [b.split('"')[3] for b in bodies] == ["a", "c", "b", "d"]
    assert _percentile([float(x) for x in range(1, 101)], 0.99) == 100
    url = _with_db_name("postgres://u:p@h:5432/brokerdesk?sslmode=disable", "test_brokerdesk")
    assert url == "postgres://u:p@h:5432/test_brokerdesk?sslmode=disable"


def test_the_client_counts_errors_when_nothing_listens():
    result = run(port=9, path="/", bodies=["{}"], seconds=0.05, threads=1)
    assert result["latencies_ms"] == []
    assert result["errors"] > 0


def test_the_two_sides_take_turns_going_first():
    from bench.license import _slices

    assert _slices(["validation", "trivial"], 3) == [
        "validation",
        "trivial",
        "trivial",
        "validation",
        "validation",
        "trivial",
    ]


def test_the_client_spreads_its_connections_evenly_over_the_workers():
    """A stand-in server whose first three connections land on worker A, then alternate."""
    import itertools
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    landing = itertools.chain("AAA", itertools.cycle("BA"))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            with lock:
                self.worker = next(landing)

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"code":"VALID"}'
            self.send_response(200)
            self.send_header("X-Bench-Worker", self.worker)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run(
            port=server.server_address[1],
            path="/",
            bodies=["{}"],
            seconds=0.2,
            threads=4,
            workers=2,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result["spread"] == {"A": 2, "B": 2}
    assert result["reconnects"] == 2  # the third and the fifth landed on A, which had two
    assert result["errors"] == 0 and result["codes"]["VALID"] > 0


def test_the_bench_server_names_the_worker_that_answered(client, settings):
    import os

    settings.ROOT_URLCONF = "bench.license_urls"
    settings.MIDDLEWARE = ["bench.license_middleware.WorkerPidMiddleware", *settings.MIDDLEWARE]
    response = client.post("/api/v1/bench/trivial/", {}, content_type="application/json")
    assert response["X-Bench-Worker"] == str(os.getpid())


def test_each_pair_of_neighbouring_slices_gives_its_own_ratio():
    from bench.license import _paired_ratios

    def slice_(requests, seconds=1.0):
        return {"latencies_ms": [1.0] * requests, "elapsed": seconds}

    in_order = [
        ("validation", slice_(60)),
        ("trivial view", slice_(100)),
        ("trivial view", slice_(200, 2.0)),
        ("validation", slice_(80)),
    ]
    assert _paired_ratios(in_order) == [0.6, 0.8]
