"""`/api/docs/contract/`: the REST contract (docs/api.md) as the running code ships it, so the
API docs page links to the contract of the very version it describes."""

from functools import cache

from django.conf import settings
from django.http import Http404, HttpResponse

CONTRACT = settings.BASE_DIR / "docs" / "api.md"


@cache
def _contract() -> bytes | None:
    try:
        return CONTRACT.read_bytes()
    except FileNotFoundError:
        return None


def contract(request):
    """docs/api.md as Markdown text (the same for everyone: caches may keep it)."""
    text = _contract()
    if text is None:
        raise Http404("docs/api.md is not part of this installation.")
    return HttpResponse(text, content_type="text/markdown; charset=utf-8")
