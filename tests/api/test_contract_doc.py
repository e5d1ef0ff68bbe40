"""docs/api.md is the contract as served: every operation of the OpenAPI schema has a row in
its tables, and every row names an operation the schema has. An endpoint added without its
row, or a row left behind by a removed one, fails here."""

import re
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
PREFIX = "/api/v1/"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# In a table row's first cell: a method, or a path in backticks.
_TOKEN = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\b|`([^`]+)`")


def _shape(path: str) -> str:
    """A path as compared: no prefix, no query, every `{parameter}` alike."""
    path = path.removeprefix(PREFIX).split("?", 1)[0]
    return re.sub(r"\{[^}]+\}", "{}", path)


def documented(text: str) -> set[tuple[str, str]]:
    """(method, path) of every operation row: the first cell reads like
    "GET, PATCH `auth/me/`", "POST `a/`, `b/`" (both POST) or "POST `a/`, DELETE `b/`"."""
    operations = set()
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| ---"):
            continue
        cell = line.split("|")[1]
        methods: list[str] = []
        after_path = False
        for method, path in _TOKEN.findall(cell):
            if method:
                if after_path:
                    methods, after_path = [], False
                methods.append(method)
            elif methods:
                operations.update((m, _shape(path)) for m in methods)
                after_path = True
    return operations


def served() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), _shape(path))
        for path, operations in schema["paths"].items()
        for method in operations
        if method.upper() in METHODS
    }


@pytest.fixture(scope="module")
def contract():
    return documented(DOC.read_text(encoding="utf-8")), served()


def test_the_doc_reads_rows_the_way_they_are_written():
    rows = """
| method, path | body | answer |
| --- | --- | --- |
| GET, PATCH `auth/me/` | `{refresh}` | 200 `{access}` |
| POST `sessions/{id}/start/`, `sessions/{id}/stop/` | | 200 |
| POST `trades/signals/subscribe/`, DELETE `trades/signals/unsubscribe/` | `{channel}` | |
| POST `demo/pool/replenish/?count=10` **(added)** | | 202 |
| area | Super Admin | client |
| campaigns: read | yes | no |
"""
    assert documented(rows) == {
        ("GET", "auth/me/"),
        ("PATCH", "auth/me/"),
        ("POST", "sessions/{}/start/"),
        ("POST", "sessions/{}/stop/"),
        ("POST", "trades/signals/subscribe/"),
        ("DELETE", "trades/signals/unsubscribe/"),
        ("POST", "demo/pool/replenish/"),
    }


def test_every_served_operation_has_a_row_in_docs_api_md(contract):
    doc, schema = contract
    missing = sorted(schema - doc)
    assert missing == [], f"served but not in docs/api.md: {missing}"


def test_every_row_of_docs_api_md_is_served(contract):
    doc, schema = contract
    stale = sorted(doc - schema)
    assert stale == [], f"in docs/api.md but not served: {stale}"


def test_the_api_docs_page_links_the_contract_the_app_serves(client):
    from django.conf import settings

    assert "shared/" not in settings.SPECTACULAR_SETTINGS["DESCRIPTION"]
    assert "(/api/docs/contract/)" in settings.SPECTACULAR_SETTINGS["DESCRIPTION"]
    page = client.get("/api/docs/contract/")
    assert page.status_code == 200
    assert page["Content-Type"] == "text/markdown; charset=utf-8"
    assert page.content == DOC.read_bytes()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/docs/contract/" in schema["info"]["description"]


def test_the_readme_links_the_contract_in_the_repository():
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "](docs/api.md)" in readme and "shared/API.md" not in readme
