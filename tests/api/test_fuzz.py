"""schemathesis against /api/schema/: every operation, as a Super Admin, as a client and
anonymous, in-process (WSGI) against the test database.

Every answer must be documented: no 5xx, a status code the schema lists for the operation, a
body, content type and headers that conform, and authentication enforced where the schema asks
for it (schemathesis' default checks, but two below). Generation is bounded and deterministic:
the coverage phase's valid boundary cases, then `MAX_EXAMPLES` generated cases (valid and
invalid) per operation, derandomized, so CI runs the same cases every time (about 8,000
requests, a minute or two on two cores).

Two of schemathesis' default checks judge how strictly the API reads its input rather than
what it answers, and are off (for every operation, on purpose):

- `positive_data_acceptance` wants every schema-valid request to succeed, but API.md answers
  400 for well-formed input the data refuses (an unknown promo code or channel, a weak
  password, a campaign id that names no campaign), which no schema can express;
- `negative_data_rejection` wants every schema-invalid request refused, but DRF reads a JSON
  number sent for a string field as its text, and a blank form or query value as "not given";
  the API keeps those documented DRF behaviours.

Each example runs in a savepoint rolled back after it, on the installation of `world`
(tests/api/conftest.py): path parameters and body fields sometimes name its real objects, so
the calls reach past "not found" into the code that does the work.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.api.conftest import body_values, path_values

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 8  # generated cases per operation and identity, after the coverage phase

CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
    # Stateful sequences need links the schema does not declare; the coverage phase's invalid
    # cases (thousands, mostly the same refusals) are left to the generated ones.
    "phases": {"stateful": {"enabled": False}, "coverage": {"generation": {"mode": "positive"}}},
    "checks": {
        "positive_data_acceptance": {"enabled": False},
        "negative_data_rejection": {"enabled": False},
    },
}

# Loaded at import, through the WSGI app, as a client would fetch it (the schema view touches
# no database). schemathesis' `from_fixture` would load it per test, but it does not run under
# pytest 9.2 (it writes `Node._nodeid`, which pytest no longer has).
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/", get_wsgi_application(), config=schemathesis.Config.from_dict(CONFIG)
)
# What the hooks substitute, set per module from `world` (hooks run inside the tests).
REAL: dict[str, dict] = {"paths": {}, "fields": {}}


@pytest.fixture(params=["super_admin", "client", "anonymous"])
def identity(request):
    return request.param


@pytest.fixture(autouse=True)
def _real_values(world):
    REAL["paths"], REAL["fields"] = path_values(world), body_values(world)


@pytest.fixture(autouse=True)
def _requests_keep_the_transaction():
    """Django closes a connection left outside autocommit at the end of every request; the
    test Client unhooks that, schemathesis' WSGI calls do not: unhook it for the test."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


# Generated cases: the real object first (what Hypothesis tries most), the generated id next.
@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Often, the path names a real object of the world."""
    real = REAL["paths"].get(context.operation.path)
    if not real:
        return st.just(path_parameters)
    return st.sampled_from([{**path_parameters, **real}, path_parameters])


@schema.hook
def flatmap_body(context, body):
    """Often, the fields that name objects name real ones (where the generated value has the
    real one's type): the first real value of each, or the last."""
    if not isinstance(body, dict):
        return st.just(body)
    candidates = {
        name: [v for v in REAL["fields"].get(name, ()) if type(v) is type(generated)]
        for name, generated in body.items()
    }
    candidates = {name: values for name, values in candidates.items() if values}
    if not candidates:
        return st.just(body)
    first = {**body, **{name: values[0] for name, values in candidates.items()}}
    last = {**body, **{name: values[-1] for name, values in candidates.items()}}
    return st.sampled_from([first, last, body] if first != last else [first, body])


@schema.parametrize()
# `identity` and `world` are constants of the test; the savepoint below isolates each example.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_answer_is_documented(case, identity, world):
    # The coverage phase's cases are made when the tests are collected, before `world`: their
    # valid boundary values edit, start or read its real objects rather than meet 404 each time.
    real = REAL["paths"].get(case.operation.path)
    if real and case.meta is not None and case.meta.phase.name.value == "coverage":
        case.path_parameters = {**(case.path_parameters or {}), **real}
    try:
        with transaction.atomic():
            case.call_and_validate(headers=world.headers[identity])
            transaction.set_rollback(True)
    finally:
        cache.clear()
