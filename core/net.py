"""The client address: the one every limit, lockout and audit entry uses.

A request's address is its socket's (`REMOTE_ADDR`). Only when the socket is one of the
proxies named in `TRUSTED_PROXIES` (addresses or CIDR networks) is `X-Forwarded-For` read, and
then from the right: each trusted proxy appended the address it saw, so the first entry from
the right that is not a trusted proxy is the client. Whatever a client wrote further left is
ignored, and an entry that is not an IP address ends the walk at the last proxy that vouched.
With no trusted proxies (the default) the header is never read: a client choosing its own
address could reset every limit with each request.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A forwarded chain longer than this is not a real proxy path; only its tail is read.
MAX_FORWARDED_HOPS = 16
FORWARDED_HEADER = "HTTP_X_FORWARDED_FOR"


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def trusted_proxies() -> tuple[IPNetwork, ...]:
    """The networks of `TRUSTED_PROXIES`, parsed once per distinct setting."""
    return _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(address, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address in network for network in networks)


def client_ip(request) -> str | None:
    """The caller's address: the socket's, or what a trusted proxy in front reported.

    None only when the request has no usable socket address (never over a real socket).
    """
    meta = request.META
    remote = _parse(meta.get("REMOTE_ADDR") or "")
    if remote is None:
        return None
    networks = trusted_proxies()
    if not networks or not _is_trusted(remote, networks):
        return str(remote)
    client = remote
    hops = (meta.get(FORWARDED_HEADER) or "").split(",")[-MAX_FORWARDED_HOPS:]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        client = address
        if not _is_trusted(address, networks):
            break
    return str(client)
