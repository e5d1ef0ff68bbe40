"""Ed25519 signatures over validation answers and offline license files.

The signed bytes are the answer without `signature`, as JSON with sorted keys and no spaces
(`canonical_json`). Clients verify with the public key from `licenses/public-key/`.
The private key comes from `settings.LICENSE_SIGNING_KEY` (base64 of 32 raw bytes); the
embedded default (DEBUG) makes `settings.LICENSE_SIGNING_KEY_FILE` on first use.
"""

import base64
import binascii
import json
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)
ALGORITHM = "Ed25519"


def canonical_json(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def new_private_key_b64() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw).decode()


def _load_or_create(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".license-signing-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_private_key_b64() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        os.unlink(tmp)
    logger.warning(
        "No LICENSE_SIGNING_KEY set: generated a local Ed25519 key at %s (mode 0600). "
        "Production sets LICENSE_SIGNING_KEY.",
        path,
    )
    return path.read_text().strip()


@lru_cache(maxsize=1)
def private_key() -> Ed25519PrivateKey:
    encoded = settings.LICENSE_SIGNING_KEY
    if not encoded:
        if not settings.LICENSE_SIGNING_KEY_FILE:
            raise ImproperlyConfigured("LICENSE_SIGNING_KEY must be set")
        encoded = _load_or_create(Path(settings.LICENSE_SIGNING_KEY_FILE))
    try:
        raw = base64.b64decode(encoded, validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(
            "LICENSE_SIGNING_KEY: expected base64 of a 32-byte Ed25519 private key"
        ) from exc


@lru_cache(maxsize=1)
def public_key_b64() -> str:
    raw = (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


def sign(payload: dict) -> str:
    """Base64 Ed25519 signature of `canonical_json(payload)`."""
    return base64.b64encode(private_key().sign(canonical_json(payload))).decode()


def signed_json(payload: dict) -> tuple[bytes, str]:
    """`payload` and its signature as one JSON document (the signed canonical bytes with
    `signature` added as the last member), and the signature: the answer is serialized once,
    for signing and for sending."""
    signed = canonical_json(payload)
    signature = base64.b64encode(private_key().sign(signed))
    separator = b"," if signed != b"{}" else b""
    return signed[:-1] + separator + b'"signature":"' + signature + b'"}', signature.decode()


def verify(payload: dict, signature: str, public_key: str | None = None) -> bool:
    """Whether `signature` signs `payload` (the client's check, also used by tests)."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key or public_key_b64()))
    try:
        key.verify(base64.b64decode(signature), canonical_json(payload))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


@receiver(setting_changed)
def _forget_key(*, setting, **kwargs):
    if setting in ("LICENSE_SIGNING_KEY", "LICENSE_SIGNING_KEY_FILE"):
        private_key.cache_clear()
        public_key_b64.cache_clear()
