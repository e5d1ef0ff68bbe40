"""The role matrix (role_matrix.py), called cell by cell, and its completeness: every route
of the URLconf under /api/v1/ has its row.

Each cell is one request with one identity's credentials on the installation of `world`, in
a savepoint rolled back after it, so every cell starts from the same state.
"""

import json
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.api.conftest import IDENTITIES
from tests.api.role_matrix import MATRIX

pytestmark = pytest.mark.django_db

PREFIX = "api/v1/"
# Every view answers OPTIONS (DRF's metadata) and HEAD (as GET): not routes of their own.
IMPLICIT_METHODS = {"options", "head"}
_PARAMETER = re.compile(r"\(\?P<\w+>[^)]*\)|<(?:\w+:)?\w+>|\{\w+\}")


def shape(path: str) -> str:
    """A route or a matrix path with every parameter as `{}`: `campaigns/{}/status/`."""
    return _PARAMETER.sub("{}", path.removeprefix("^").removesuffix("$").removesuffix("\\Z"))


def _patterns(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern).removeprefix("^").removesuffix("$")
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def _methods(callback) -> set[str]:
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    allowed = set(getattr(view, "http_method_names", ())) - IMPLICIT_METHODS
    actions = getattr(callback, "actions", None)
    if actions is not None:  # a viewset route: the methods the router bound
        return set(actions) & allowed
    return {method for method in allowed if hasattr(view, method)}


def api_routes() -> set[tuple[str, str]]:
    """(METHOD, shape) of every route under /api/v1/, as the URLconf and its routers have it."""
    routes = set()
    for route, callback in _patterns(get_resolver().url_patterns):
        if route.startswith(PREFIX):
            routes |= {(method.upper(), shape(route)) for method in _methods(callback)}
    return routes


def test_every_route_under_api_v1_has_its_row_in_the_matrix():
    rows = {(row.method, shape(PREFIX + row.path)) for row in MATRIX}
    missing = sorted(api_routes() - rows)
    assert not missing, "routes missing from tests/api/role_matrix.py:\n" + "\n".join(
        f"  {method} /{route}" for method, route in missing
    )


def test_every_row_of_the_matrix_is_a_route_and_appears_once():
    rows = [(row.method, shape(PREFIX + row.path)) for row in MATRIX]
    stale = sorted(set(rows) - api_routes())
    twice = sorted({entry for entry in rows if rows.count(entry) > 1})
    assert not stale, f"rows that match no route: {stale}"
    assert not twice, f"routes with more than one row: {twice}"


def test_a_path_under_api_that_names_no_route_is_a_json_404(db):
    response = APIClient().get("/api/v1/campaigns/1.5/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


CELLS = [
    pytest.param(row, identity, id=f"{row.label} as {identity}")
    for row in MATRIX
    for identity in IDENTITIES
]


@pytest.mark.parametrize(("row", "identity"), CELLS)
def test_the_role_matrix(world, row, identity):
    path = "/" + PREFIX + row.path.format_map(world) + (f"?{row.query}" if row.query else "")
    headers = {}
    if authorization := world.headers[identity].get("Authorization"):
        headers["HTTP_AUTHORIZATION"] = authorization
    if row.license_key:
        headers["HTTP_X_LICENSE_KEY"] = world.license_key
    body = json.dumps(row.body(world)) if row.body else ""
    response = APIClient().generic(
        row.method, path, body, content_type="application/json", **headers
    )

    expected = row.expect[identity]
    assert response.status_code == expected, (
        f"{row.label} as {identity}: expected {expected}, got {response.status_code}: "
        f"{response.content[:300]!r}"
    )
