"""Every HTTP call to an outside server goes through `request()`: a timeout is mandatory,
transient failures are retried with exponential backoff and jitter, permanent ones never."""

import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import requests

from .errors import PermanentGatewayError, TransientGatewayError, UnknownOutcomeError

logger = logging.getLogger(__name__)

_session = requests.Session()
# Statuses an outside server uses for "not now": worth another try.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    gateway: str,
    retries: int = 0,
    backoff: float = 0.5,
    idempotent: bool | None = None,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    data: Any = None,
    label: str | None = None,
) -> requests.Response:
    """Send one request; return the 2xx/4xx-handled-by-caller response or raise a typed error.

    `timeout` has no default on purpose. A timeout on a write that is not idempotent raises
    `UnknownOutcomeError` at once: resending could do the thing twice, so the caller decides.
    Errors and logs name the call by `label` (default: the URL's path); pass a label when the
    path itself holds a secret (Telegram puts the bot token there).
    """
    if timeout is None or timeout <= 0:
        raise ValueError("a positive timeout is mandatory for outside calls")
    method = method.upper()
    if idempotent is None:
        idempotent = method in SAFE_METHODS
    name = f"{method} {label or _path(url)}"
    attempt = 0
    while True:
        try:
            response = _session.request(
                method, url, json=json, params=params, headers=headers, data=data, timeout=timeout
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            sent = not isinstance(exc, requests.ConnectTimeout) and not _refused(exc)
            if sent and not idempotent:
                raise UnknownOutcomeError(
                    f"{name}: no answer ({type(exc).__name__})", gateway=gateway
                ) from exc
            error = TransientGatewayError(f"{name}: {type(exc).__name__}", gateway=gateway)
        else:
            if response.status_code < 400:
                return response
            if response.status_code not in TRANSIENT_STATUSES:
                raise PermanentGatewayError(
                    f"{name}: HTTP {response.status_code} {_reason(response)}",
                    gateway=gateway,
                    code=_code(response),
                    status=response.status_code,
                )
            error = TransientGatewayError(
                f"{name}: HTTP {response.status_code}",
                gateway=gateway,
                code=_code(response),
                status=response.status_code,
            )
        if attempt >= retries:
            raise error
        delay = backoff * (2**attempt) * (0.5 + random.random() / 2)
        logger.info(
            "retrying outside call",
            extra={"gateway": gateway, "attempt": attempt + 1, "delay": round(delay, 3)},
        )
        time.sleep(delay)
        attempt += 1


def json_object(response: requests.Response, *, gateway: str, name: str) -> dict:
    """The answer's JSON object ({} for any other JSON); an unreadable body is transient."""
    try:
        data = response.json()
    except ValueError as exc:
        raise TransientGatewayError(f"{name}: unreadable answer", gateway=gateway) from exc
    return data if isinstance(data, dict) else {}


def _refused(exc: Exception) -> bool:
    # A refused connection never reached the server: nothing happened there.
    return isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower()


def _path(url: str) -> str:
    # Never log query strings: they may carry credentials.
    return url.split("?", 1)[0]


def _reason(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        # DRF-style `detail`, common `message`/`error`, Telegram's `description`.
        for key in ("detail", "message", "error", "description"):
            if body.get(key):
                return str(body[key])
    return ""


def _code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""
