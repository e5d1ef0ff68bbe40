"""Encryption at rest: a keyring of AES-256-GCM keys with ids, and the envelope every value
encrypted under it carries. Also the token sealing of one-time deliveries.

Envelope (text, so it fits a TextField and survives dumps and fixtures)::

    enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>

`v1` is the algorithm version: AES-256-GCM, a random 96-bit nonce, a 128-bit tag. The
associated data is `brokerdesk:v1:<key id>:<aad>`, where the caller's `aad` names the row the
value belongs to (see `delivery.fields.EncryptedTextField`): a ciphertext copied into another
row, or under another key id, does not decrypt. A key id that is not configured raises
`UnknownKeyError` naming it; a value that does not authenticate raises `DecryptionError`.
Nothing here ever returns garbage.

Keys come from `settings.ENCRYPTION_KEYS` ("kid:base64key" separated by commas, newest first;
the newest encrypts, all decrypt). Without it, the embedded default reads
`settings.ENCRYPTION_KEY_FILE` (under var/), made on first run.
"""

import base64
import binascii
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone

logger = logging.getLogger(__name__)

PREFIX = "enc"
VERSION = "v1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_ENVELOPE = re.compile(
    r"^enc:(?P<version>v\d+):(?P<kid>[A-Za-z0-9_.-]{1,40}):(?P<body>[A-Za-z0-9_-]+)$"
)

# Token sealing (one-time deliveries): "t1:" + base64url(salt || nonce || ciphertext || tag).
SEALED_VERSION = "t1"
_SALT_BYTES = 16
_HKDF_INFO = b"brokerdesk delivery payload t1"


class CryptoError(Exception):
    """A value could not be encrypted or decrypted."""


class UnknownKeyError(CryptoError):
    """The value was encrypted under a key id that is not configured (any more)."""

    def __init__(self, key_id: str):
        self.key_id = key_id
        super().__init__(
            f"value encrypted under key id {key_id!r}, which is not configured in "
            "ENCRYPTION_KEYS: put that key back (and run rotate_keys) before dropping it"
        )


class DecryptionError(CryptoError):
    """The value is malformed, was tampered with, or belongs to another row or token."""


# --- The keyring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyring:
    """AES-256 keys by id, newest first: the newest encrypts, every one decrypts."""

    keys: tuple[tuple[str, bytes], ...]

    @property
    def newest_id(self) -> str:
        return self.keys[0][0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(kid for kid, _ in self.keys)

    def key(self, key_id: str) -> bytes:
        for kid, key in self.keys:
            if kid == key_id:
                return key
        raise UnknownKeyError(key_id)


def parse_keys(text: str) -> Keyring:
    """Read "kid:base64key" entries (commas or lines; `#` comments), newest first."""
    entries: list[tuple[str, bytes]] = []
    lines = (line for line in text.splitlines() if not line.strip().startswith("#"))
    for raw in ",".join(lines).split(","):
        entry = raw.strip()
        if not entry:
            continue
        kid, sep, encoded = entry.partition(":")
        kid = kid.strip()
        if not sep or not KEY_ID.match(kid):
            raise ImproperlyConfigured(
                "ENCRYPTION_KEYS: each entry is 'kid:base64key' with a key id of letters, "
                "digits, '.', '_' or '-' (up to 40)"
            )
        key = _b64decode_key(encoded.strip())
        if key is None or len(key) != KEY_BYTES:
            raise ImproperlyConfigured(
                f"ENCRYPTION_KEYS: key {kid!r} is not {KEY_BYTES} bytes of base64 (AES-256)"
            )
        if any(kid == seen for seen, _ in entries):
            raise ImproperlyConfigured(f"ENCRYPTION_KEYS: key id {kid!r} appears twice")
        entries.append((kid, key))
    if not entries:
        raise ImproperlyConfigured("ENCRYPTION_KEYS holds no key")
    return Keyring(tuple(entries))


def _b64decode_key(encoded: str) -> bytes | None:
    # Standard and URL-safe alphabets, padded or not.
    normalized = encoded.replace("-", "+").replace("_", "/")
    normalized += "=" * (-len(normalized) % 4)
    try:
        return base64.b64decode(normalized, validate=True)
    except (binascii.Error, ValueError):
        return None


def new_key_entry(key_id: str | None = None) -> str:
    """A fresh "kid:base64key" entry (256 random bits) for ENCRYPTION_KEYS."""
    kid = key_id or f"k{timezone.now():%Y%m%d%H%M}"
    if not KEY_ID.match(kid):
        raise ValueError(f"bad key id {kid!r}: letters, digits, '.', '_' or '-' (up to 40)")
    return f"{kid}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def load_or_create_key_file(path: str | os.PathLike) -> str:
    """The local key file's text; made (mode 0600) with one new key when it does not exist.

    Web, worker and beat may start at the same moment: the file is written whole under a
    temporary name and linked into place, so exactly one key wins and everyone reads it.
    """
    path = Path(path)
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# Brokerdesk local encryption keys (embedded default, DEBUG only), newest first.\n"
        "# Losing this file loses every value encrypted under it. Production: ENCRYPTION_KEYS.\n"
        f"{new_key_entry('local1')}\n"
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".encryption-keys-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text()  # another process made it first: use theirs
    finally:
        os.unlink(tmp)
    logger.warning(
        "No ENCRYPTION_KEYS set: generated a local encryption key file at %s (mode 0600). "
        "Fine for development; production sets ENCRYPTION_KEYS.",
        path,
    )
    return text


_keyring: Keyring | None = None


def get_keyring() -> Keyring:
    """The configured keyring (read once per process; tests that change settings reset it)."""
    global _keyring
    if _keyring is None:
        if settings.ENCRYPTION_KEYS:
            _keyring = parse_keys(settings.ENCRYPTION_KEYS)
        elif getattr(settings, "ENCRYPTION_KEY_FILE", ""):
            _keyring = parse_keys(load_or_create_key_file(settings.ENCRYPTION_KEY_FILE))
        else:
            raise ImproperlyConfigured("ENCRYPTION_KEYS must be set (see docs/delivery.md)")
    return _keyring


@receiver(setting_changed)
def _forget_keyring(*, setting, **kwargs):
    global _keyring
    if setting in ("ENCRYPTION_KEYS", "ENCRYPTION_KEY_FILE"):
        _keyring = None


# --- Envelopes --------------------------------------------------------------------------------


def _associated_data(key_id: str, aad: str) -> bytes:
    return f"brokerdesk:{VERSION}:{key_id}:{aad}".encode()


def encrypt(value: str, *, aad: str) -> str:
    """Encrypt `value` under the newest key, bound to `aad` (what the value belongs to)."""
    if not isinstance(value, str):
        raise TypeError("encrypt() takes a str")
    keyring = get_keyring()
    kid = keyring.newest_id
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(keyring.key(kid)).encrypt(nonce, value.encode(), _associated_data(kid, aad))
    return f"{PREFIX}:{VERSION}:{kid}:{_b64encode(nonce + sealed)}"


def decrypt(envelope: str, *, aad: str) -> str:
    """The plaintext of an envelope made by `encrypt` with the same `aad`."""
    _version, kid, body = _parse(envelope)
    key = get_keyring().key(kid)  # UnknownKeyError names the missing key id
    try:
        raw = _b64decode(body)
        plain = AESGCM(key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated_data(kid, aad)
        )
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError(
            f"value under key id {kid!r} does not authenticate: tampered with, or it "
            "belongs to another row"
        ) from exc
    return plain.decode()


def key_id_of(envelope: str) -> str:
    """The id of the key an envelope was encrypted under (no decryption)."""
    return _parse(envelope)[1]


def is_envelope(value: object) -> bool:
    return isinstance(value, str) and _ENVELOPE.match(value) is not None


def _parse(envelope: str) -> tuple[str, str, str]:
    match = _ENVELOPE.match(envelope) if isinstance(envelope, str) else None
    if match is None:
        raise DecryptionError("not an encrypted value (expected enc:v1:<key id>:...)")
    if match["version"] != VERSION:
        raise DecryptionError(f"unsupported encryption version {match['version']!r}")
    if len(match["body"]) < (NONCE_BYTES + TAG_BYTES) * 4 // 3:
        raise DecryptionError("encrypted value is truncated")
    return match["version"], match["kid"], match["body"]


# --- Token sealing: what only the holder of a one-time link can open ------------------------


def _token_key(token: str, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=_HKDF_INFO).derive(
        token.encode()
    )


def seal_with_token(plaintext: bytes, *, token: str, aad: str) -> str:
    """Encrypt with an AES-256-GCM key derived from `token` (HKDF-SHA256, random salt)."""
    salt = os.urandom(_SALT_BYTES)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_token_key(token, salt)).encrypt(nonce, plaintext, aad.encode())
    return f"{SEALED_VERSION}:{_b64encode(salt + nonce + sealed)}"


def open_with_token(sealed: str, *, token: str, aad: str) -> bytes:
    """The plaintext of `seal_with_token`'s output, given the same token and aad."""
    version, _, body = sealed.partition(":")
    if version != SEALED_VERSION:
        raise DecryptionError(f"unsupported sealing version {version!r}")
    try:
        raw = _b64decode(body)
        salt, nonce = raw[:_SALT_BYTES], raw[_SALT_BYTES : _SALT_BYTES + NONCE_BYTES]
        return AESGCM(_token_key(token, salt)).decrypt(
            nonce, raw[_SALT_BYTES + NONCE_BYTES :], aad.encode()
        )
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("sealed payload does not open with this token") from exc


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("bad base64") from exc
