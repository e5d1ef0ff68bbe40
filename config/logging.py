"""Structured logging: one JSON object per line on stdout, for whatever collects the logs.

No secret reaches a log line: the formatter redacts every field of every record, nested values
too, before it writes the line. Two nets, because a secret can hide in any field (Django puts
the request object in `request`, whose text holds the path; an exception's text can hold a
body):

* by name: a field called like a secret (`password`, `token`, `authorization`, ...) is
  replaced whole, whatever its value;
* by shape, in every text: `/d/<token>` paths, `Bearer`/`Api-Key` credentials, JWTs, license
  keys (`LICENSE_KEY_PREFIX-XXXX-...`), API keys (`<12 hex>.<secret>`) and `password=`/
  `"token": "..."` pairs in query strings, form bodies and JSON.

`RedactingGunicornLogger` applies the same to gunicorn's access log (config/gunicorn.py).
"""

import json
import logging
import re
from datetime import UTC, datetime

from gunicorn.glogging import Logger as GunicornLogger

REDACTED = "<redacted>"

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

# A field whose name says it holds a secret is dropped whole (compared lowercased, with `-`
# read as `_`): `HTTP_AUTHORIZATION`, `X-License-Key`, `refresh`, `new_password`...
_SECRET_NAME = re.compile(
    r"(password|passwd|passphrase|secret|token|authorization|api_?key|license_?key|"
    r"^(pass|access|refresh|key|raw_key|cookie|http_cookie|sessionid|csrftoken|otp|pin)$)"
)

# Names whose value is a secret in `name=value` (query strings, forms, reprs) and
# `"name": "value"` (JSON in a text).
_PAIR_NAMES = (
    r"[\w-]*(?:password|passwd|secret|token)[\w-]*|access|refresh|api_?key|license_?key|"
    r"key|authorization|x-license-key"
)
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # A one-time link: the token after /d/, also percent-encoded (a `next=` or a Referer).
    (re.compile(r"(/d/)[A-Za-z0-9_\-%.~]{8,}"), r"\1" + REDACTED),
    (re.compile(r"(%2Fd%2F)[A-Za-z0-9_\-%.~]{8,}", re.IGNORECASE), r"\1" + REDACTED),
    # Credentials in an Authorization header or anything that quotes one.
    (
        re.compile(r"\b((?i:Bearer|Api-Key)|Basic)(\s+|%20|\+)[^\s\"',;&]+"),
        r"\1 " + REDACTED,
    ),
    # A JWT: base64url(JSON header) always starts "eyJ"; three parts.
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # An API key `<12 hex>.<secret>`: the prefix is not secret (the admin shows it).
    (re.compile(r"\b([0-9a-f]{12})\.[A-Za-z0-9_-]{16,}"), r"\1." + REDACTED),
    # name=value in a query string, a form body or a repr.
    (
        re.compile(rf"(?i)\b({_PAIR_NAMES})(=|%3D)[^&\s\"',;)]*"),
        r"\1\2" + REDACTED,
    ),
    # "name": "value" in JSON text (also with escaped quotes, JSON inside JSON).
    (
        re.compile(rf"(?i)(\\?[\"'](?:{_PAIR_NAMES})\\?[\"']\s*:\s*)(\\?[\"']).*?(?<!\\)\2"),
        r"\1\2" + REDACTED + r"\2",
    ),
)


def _license_key_pattern() -> re.Pattern[str]:
    """`QT-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX` with the configured prefix, dashes or spaces or none
    between the groups (licensing.keys reads a typed key so too), any case."""
    from django.conf import settings

    prefix = "QT"  # licensing's default; gunicorn's master may log before settings load
    if settings.configured:
        prefix = getattr(settings, "LICENSE_KEY_PREFIX", "") or prefix
    if prefix not in _license_patterns:
        _license_patterns[prefix] = re.compile(
            rf"(?i)\b{re.escape(prefix)}[-\s]?(?:[0-9A-Z]{{4}}[-\s]?){{5}}[0-9A-Z]{{4}}\b"
        )
    return _license_patterns[prefix]


_license_patterns: dict[str, re.Pattern[str]] = {}


def redact_text(text: str) -> str:
    """`text` with every secret of a known shape replaced by `<redacted>`."""
    if not text:
        return text
    text = _license_key_pattern().sub(REDACTED, text)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def is_secret_name(name) -> bool:
    return isinstance(name, str) and bool(_SECRET_NAME.search(name.lower().replace("-", "_")))


def redact_value(value, *, _depth: int = 0):
    """A JSON-ready copy of `value` with secrets redacted, by field name and by shape."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if _depth > 8:
        return REDACTED  # deeper than any honest log field: not worth the risk of walking it
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {
            redact_text(str(key)): REDACTED
            if is_secret_name(key)
            else redact_value(item, _depth=_depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item, _depth=_depth + 1) for item in value]
    try:
        text = str(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return redact_text(text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(redact_value(entry))


class RedactingGunicornLogger(GunicornLogger):
    """gunicorn's logger whose access-log atoms (request line, path, query, Referer...) are
    redacted before the line is written, whatever the access-log format."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: _redact_atom(key, value) for key, value in atoms.items()}


def _redact_atom(key: str, value):
    # `{authorization}i` (a request header), `{http_cookie}e` (an environ variable)...
    name = key[1:-2] if key.startswith("{") and key.endswith(("}i", "}o", "}e")) else key
    if is_secret_name(name) and value not in (None, "", "-"):
        return REDACTED
    return redact_text(value) if isinstance(value, str) else value
