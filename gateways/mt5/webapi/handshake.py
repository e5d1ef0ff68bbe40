"""The Web API's mutual MD5 handshake (spec /work/shared/mt5-webapi.md, section 2).

P = UTF-16LE(password); H = MD5(MD5(P) || b"WebAPI")         (raw digests, not hex)
srv_rand_answer = hex(MD5(H || unhex(srv_rand)))              (we prove the password)
cli_rand_answer = hex(MD5(H || unhex(cli_rand)))              (the server proves it)
"""

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from typing import Any

# Any version >= 484 is accepted; it only shows in the access server's log.
CLIENT_VERSION = 1290
AGENT = "Brokerdesk"


class HandshakeError(Exception):
    """The handshake failed; `code` is the MTRetCode-ish reason (1008: the server is not who
    it claims, it could not answer our cli_rand)."""

    def __init__(self, message: str, *, retcode: int = 0):
        self.retcode = retcode
        super().__init__(message)


def pw_hash(password: str) -> bytes:
    """The 16-byte password hash H both sides derive from the manager password."""
    first = hashlib.md5(password.encode("utf-16-le")).digest()  # noqa: S324 (MetaQuotes' choice)
    return hashlib.md5(first + b"WebAPI").digest()  # noqa: S324


def rand_answer(password_hash: bytes, rand_hex: str) -> str:
    """hex(MD5(H || unhex(rand_hex))): the answer to a 16-byte random challenge."""
    return hashlib.md5(password_hash + bytes.fromhex(rand_hex)).hexdigest()  # noqa: S324


def new_cli_rand() -> str:
    """Our challenge to the server: 16 random bytes as hex."""
    return secrets.token_hex(16)


def authenticate(
    get: Callable[[str, Mapping[str, Any]], Mapping[str, Any]],
    *,
    login: int,
    password: str,
    cli_rand: str | None = None,
) -> dict[str, str]:
    """Run start, answer and the server check through `get(path, params) -> answer JSON`.

    `get` raises on transport errors and non-zero retcodes. Returns the server's versions
    (`version_access`, `version_trade`); raises `HandshakeError` if the server's answer to our
    challenge is wrong (MT_RET_AUTH_SERVER_BAD, 1008).
    """
    started = get(
        "/api/auth/start",
        {"version": CLIENT_VERSION, "agent": AGENT, "login": int(login), "type": "manager"},
    )
    srv_rand = str(started.get("srv_rand") or "")
    try:
        bytes.fromhex(srv_rand)
    except ValueError:
        raise HandshakeError("auth/start gave no usable srv_rand", retcode=1008) from None
    secret = pw_hash(password)
    cli_rand = cli_rand or new_cli_rand()
    answered = get(
        "/api/auth/answer",
        {"srv_rand_answer": rand_answer(secret, srv_rand), "cli_rand": cli_rand},
    )
    expected = rand_answer(secret, cli_rand)
    if not hmac.compare_digest(str(answered.get("cli_rand_answer") or "").lower(), expected):
        raise HandshakeError(
            "the server's cli_rand_answer is wrong: it does not know the manager password",
            retcode=1008,
        )
    return {
        "version_access": str(answered.get("version_access") or started.get("version_access", "")),
        "version_trade": str(answered.get("version_trade") or ""),
    }
