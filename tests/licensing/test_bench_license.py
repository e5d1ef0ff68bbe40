"""The bench's own pieces (the timed run itself is `make bench`, never a test)."""

from django.urls import resolve, reverse

from licensing.bench_client import run
from licensing.management.commands.bench_license import _bodies, _percentile, _with_db_name


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
