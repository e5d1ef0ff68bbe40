"""Refresh tokens at rest: kept as a digest, never as the token.

simplejwt's blacklist app records every refresh token it issues (`OutstandingToken`) with the
whole token in clear, although blacklisting needs only its `jti`. A dump of that table would
hand out refresh tokens that still work for days. Before a row is saved its `token` becomes
`sha256:<hex digest>`: enough to match a token in hand, useless to present.
"""

import hashlib

PREFIX = "sha256:"


def token_digest(token: str) -> str:
    """What is stored for `token`."""
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


def outstanding_token_hash(sender, instance, **kwargs) -> None:
    """pre_save of `OutstandingToken`: store the digest in place of the token."""
    token = instance.token or ""
    if token and not token.startswith(PREFIX):
        instance.token = token_digest(token)
