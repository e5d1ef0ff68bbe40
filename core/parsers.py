"""Request-body parsers for the REST API: bounded size, bounded nesting, no NUL in text.

`json.loads` recurses: 1,000 nested arrays were a RecursionError, a 500, on every JSON
endpoint, the anonymous ones too. PostgreSQL text refuses `\\u0000`, and JSON object keys or
strings no serializer field checks were let through. Here:

- a body over DATA_UPLOAD_MAX_MEMORY_SIZE bytes: 413 `too_large` (DRF 3.18 reads JSON and
  form bodies through `request.body`, where Django enforces it; `core.exceptions` answers
  that as 413 too, and the parser checks again for a stream handed over unread);
- nesting deeper than API_MAX_JSON_DEPTH, measured by a scan of the brackets outside
  strings BEFORE parsing: 400 `too_deep`;
- NaN, Infinity (not JSON): 400 `parse_error`;
- a NUL or an unpaired surrogate (which UTF-8 cannot hold) in any string, key or value:
  400 `bad_text`. Form and multipart bodies get the same check on their fields.

JSON numbers with a fraction or an exponent come out as `JSONFloat`, a float that keeps the
text it was written as, so `core.money` can tell `500.5` from `5.005e2`.
"""

import json
import re

from django.conf import settings
from django.http import QueryDict
from rest_framework import exceptions, parsers, status

DEFAULT_MAX_JSON_DEPTH = 32
# A string (to its closing quote or, unterminated, to the end: never retried, so linear) or
# one bracket. Only brackets outside strings count towards the depth.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class JSONFloat(float):
    """A JSON number with a fraction or exponent, with the text it was written as."""

    __slots__ = ("raw",)
    raw: str

    @classmethod
    def from_text(cls, text: str) -> "JSONFloat":
        number = cls(text)
        number.raw = text
        return number


def json_depth(text: str, *, limit: int) -> int:
    """How deep the arrays and objects of `text` nest, counted without recursion; stops
    counting (and returns) as soon as it passes `limit`."""
    depth = deepest = 0
    for token in _TOKEN.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def text_problem(data) -> str | None:
    """The first string (key or value) in parsed data holding a NUL or an unpaired
    surrogate, or None. Iterative: the depth is already bounded, but nothing here recurses."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _BAD_TEXT.search(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _bad_text() -> exceptions.ParseError:
    return exceptions.ParseError(
        "Text may not contain NUL characters (\\u0000) or unpaired surrogates.", code="bad_text"
    )


def _read_bounded(stream) -> bytes:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return stream.read()
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise TooLarge(f"The request body is larger than {limit} bytes.")
    return body


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, bounded in size and nesting, refusing NUL and NaN."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = _read_bounded(stream)
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}", code="parse_error") from exc
        limit = getattr(settings, "API_MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH)
        if json_depth(text, limit=limit) > limit:
            raise exceptions.ParseError(f"JSON nested deeper than {limit} levels.", code="too_deep")
        try:
            data = json.loads(
                text, parse_float=JSONFloat.from_text, parse_constant=_refuse_constant
            )
        except RecursionError as exc:  # the scan above makes this unreachable; never a 500
            raise exceptions.ParseError("JSON nested too deep.", code="too_deep") from exc
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}", code="parse_error") from exc
        if text_problem(data) is not None:
            raise _bad_text()
        return data


def _form_problem(query_dict) -> bool:
    return any(text_problem([key, *values]) is not None for key, values in query_dict.lists())


class FormParser(parsers.FormParser):
    """DRF's form parser, bounded in size, refusing NUL in any field."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        data = QueryDict(_read_bounded(stream), encoding=encoding)
        if _form_problem(data):
            raise _bad_text()
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser (Django bounds its fields' size), refusing NUL in any field."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        if _form_problem(parsed.data):
            raise _bad_text()
        return parsed
