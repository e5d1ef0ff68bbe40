import threading

from core.errors import RateLimitedError
from licensing import ratelimit
from licensing.ratelimit import rate_limit_check

THREADS = 50


def fire_at_once(work) -> tuple[int, int]:
    start = threading.Barrier(THREADS)
    allowed, refused = [], []

    def one():
        start.wait(timeout=10)
        try:
            work()
            allowed.append(1)
        except RateLimitedError:
            refused.append(1)

    threads = [threading.Thread(target=one) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return len(allowed), len(refused)


def test_50_concurrent_requests_against_a_limit_of_10_let_exactly_10_through():
    allowed, refused = fire_at_once(
        lambda: rate_limit_check(scope="t", ident="concurrent", rate="10/min")
    )
    assert (allowed, refused) == (10, 40)


def test_with_redis_unreachable_the_limiter_falls_back_to_memory_and_still_limits(settings, caplog):
    settings.LICENSE_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens
    ratelimit._limiter = None
    allowed, refused = fire_at_once(
        lambda: rate_limit_check(scope="t", ident="fallback", rate="10/min")
    )
    assert (allowed, refused) == (10, 40)
    assert ratelimit.get_limiter().backend == "memory"
    fallbacks = [r for r in caplog.records if "limiting in process memory" in r.getMessage()]
    assert len(fallbacks) == 1


def test_a_refusal_carries_retry_after_and_rate_limit_headers(api, settings, db):
    settings.LICENSE_PUBLIC_RATE_LIMIT = "2/min"
    ratelimit._limiter = None
    first = api.get("/api/v1/licenses/public-key/")
    assert first["X-RateLimit-Limit"] == "2"
    assert first["X-RateLimit-Remaining"] == "1"
    api.get("/api/v1/licenses/public-key/")
    refused = api.get("/api/v1/licenses/public-key/")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1
    assert refused["X-RateLimit-Remaining"] == "0"


def test_the_status_endpoint_says_where_the_caller_stands_and_which_backend(api, settings, db):
    settings.LICENSE_PUBLIC_RATE_LIMIT = "5/min"
    ratelimit._limiter = None
    api.get("/api/v1/licenses/public-key/")
    body = api.get("/api/v1/rate-limit/status/").json()
    assert body["limit"] == 5
    assert body["remaining"] == 4
    assert body["backend"] == ("redis" if settings.LICENSE_RATE_LIMIT_REDIS_URL else "memory")
    assert body["reset_at"]


def test_validation_is_limited_per_key(api, settings, make_license):
    settings.LICENSE_VALIDATE_RATE_LIMIT_PER_KEY = "3/min"
    ratelimit._limiter = None
    _, key = make_license()
    codes = [
        api.post("/api/v1/licenses/validate/", {"license_key": key}, format="json").status_code
        for _ in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]


def test_a_limit_whose_interval_is_not_a_whole_millisecond_limits_exactly():
    """7/min is one request every 8,571.43 ms: the bucket's expiry must still be set."""
    results = []
    for _ in range(8):
        try:
            results.append(rate_limit_check(scope="t", ident="odd", rate="7/min").remaining)
        except RateLimitedError as exc:
            results.append(f"refused, retry in {exc.retry_after} s")
    assert results[:7] == [6, 5, 4, 3, 2, 1, 0]
    assert results[7] == "refused, retry in 9 s"
