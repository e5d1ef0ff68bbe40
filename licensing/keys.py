"""License keys: `QT-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX`, Crockford base32.

23 random symbols (115 bits) and a final check symbol (Luhn mod 32): a mistyped symbol, and
almost every swap of two neighbours, is refused here, without a database lookup. The key is
never stored: `key_digest` is HMAC-SHA256 with the server-side pepper.
"""

import hashlib
import hmac
import re
import secrets

from django.conf import settings

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Crockford's reading rules: what a person types for 0 and 1.
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
BODY_SYMBOLS = 24  # 23 random + 1 check
GROUP = 4
RANDOM_SYMBOLS = BODY_SYMBOLS - 1


class MalformedKeyError(ValueError):
    """Not a license key: wrong shape, wrong symbols or a wrong check symbol."""


def check_symbol(body: str) -> str:
    """Luhn mod 32 over the body's symbols."""
    factor, total = 2, 0
    for symbol in reversed(body):
        addend = factor * _VALUE[symbol]
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return ALPHABET[(32 - total % 32) % 32]


def _prefix() -> str:
    return settings.LICENSE_KEY_PREFIX.upper()


def _format(body: str) -> str:
    groups = [body[i : i + GROUP] for i in range(0, len(body), GROUP)]
    return "-".join([_prefix(), *groups])


def key_generate() -> str:
    """A new random key in its canonical form."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_SYMBOLS))
    return _format(body + check_symbol(body))


def key_normalize(raw: str) -> str:
    """The canonical form of a typed key; `MalformedKeyError` when it cannot be one."""
    if not isinstance(raw, str) or len(raw) > 80:
        raise MalformedKeyError("not a license key")
    text = re.sub(r"[\s-]", "", raw.upper())
    prefix = _prefix()
    if not text.startswith(prefix):
        raise MalformedKeyError("not a license key")
    body = text[len(prefix) :].translate(_ALIASES)
    if len(body) != BODY_SYMBOLS or any(symbol not in _VALUE for symbol in body):
        raise MalformedKeyError("not a license key")
    if check_symbol(body[:-1]) != body[-1]:
        raise MalformedKeyError("the key's check character does not match: mistyped?")
    return _format(body)


def key_digest(key: str) -> str:
    """HMAC-SHA256(pepper, canonical key), hex: what the database keeps."""
    return hmac.new(settings.LICENSE_KEY_PEPPER.encode(), key.encode(), hashlib.sha256).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
