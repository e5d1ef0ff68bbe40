"""The soak's HTTP client: a real client with timeouts, and a tally of every answer it saw.

One `Api` per thread (a `requests.Session` each); one `Tally` shared by all of them. A 5xx is
kept with its label, code and the start of its body, so the report can say what failed.
"""

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import requests

# Connect, read: a request the product does not answer in time counts as unanswered.
TIMEOUT = (5.0, 30.0)
# The contract's answer to a fault of an outside server: 503 with a machine code.
OUTSIDE_FAULT_CODES = frozenset({"gateway_unavailable", "demo_server_unavailable"})


@dataclass
class Answer:
    """What came back: `status` is None when nothing did (timeout, refused connection)."""

    status: int | None
    data: Any = None
    text: str = ""
    headers: dict = field(default_factory=dict)
    error: str = ""

    @property
    def code(self) -> str:
        return str(self.data.get("code", "")) if isinstance(self.data, dict) else ""

    def ok(self, *statuses: int) -> bool:
        return self.status in (statuses or (200, 201))


@dataclass
class ServerError:
    """One 5xx answer, as the report shows it."""

    label: str
    status: int
    code: str
    body: str
    expected: bool  # the contract's 503 for an outside fault, with its code
    retry_after: bool


class Tally:
    """Thread-safe counts of answers per label and status, latencies, and every 5xx."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statuses: Counter[tuple[str, int | None]] = Counter()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.server_errors: list[ServerError] = []
        self.unanswered: Counter[str] = Counter()
        self.events: Counter[str] = Counter()  # what the workload did, by name

    def record(self, label: str, answer: Answer, seconds: float) -> None:
        with self._lock:
            self.statuses[(label, answer.status)] += 1
            self.latencies[label].append(seconds)
            if answer.status is None:
                self.unanswered[label] += 1
            elif answer.status >= 500:
                expected = answer.status == 503 and answer.code in OUTSIDE_FAULT_CODES
                self.server_errors.append(
                    ServerError(
                        label,
                        answer.status,
                        answer.code,
                        answer.text[:200],
                        expected,
                        retry_after=bool(answer.headers.get("Retry-After")),
                    )
                )

    def count(self, event: str, n: int = 1) -> None:
        with self._lock:
            self.events[event] += n

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def by_status_class(self) -> Counter[str]:
        classes: Counter[str] = Counter()
        for (_label, status), n in self.statuses.items():
            classes["no answer" if status is None else f"{status // 100}xx"] += n
        return classes

    def percentiles(self, label: str) -> tuple[float, float]:
        """p50 and p95 of a label's latencies, in milliseconds."""
        values = sorted(self.latencies.get(label) or [0.0])
        p50 = values[len(values) // 2]
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        return p50 * 1000, p95 * 1000


class Api:
    """Calls to the product for one thread, each with a timeout, each tallied."""

    def __init__(self, base_url: str, tally: Tally, *, timeout=TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.tally = tally
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "brokerdesk-soak/1"

    def call(
        self,
        method: str,
        path: str,
        *,
        label: str | None = None,
        auth: str | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict | None = None,
        params: dict | None = None,
    ) -> Answer:
        """One request; `label` names it in the tally (the route, without ids or tokens)."""
        label = label or f"{method} {path}"
        sent = dict(headers or {})
        if auth:
            sent["Authorization"] = auth
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=json,
                data=data,
                headers=sent,
                params=params,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            answer = Answer(None, error=type(exc).__name__)
        else:
            answer = Answer(
                response.status_code,
                data=_json(response),
                text=response.text,
                headers=dict(response.headers),
            )
        self.tally.record(label, answer, time.perf_counter() - started)
        return answer

    def cookie(self, name: str) -> str | None:
        return self.session.cookies.get(name)


def _json(response: requests.Response) -> Any:
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def bearer(token: str) -> str:
    return f"Bearer {token}"


def api_key(key: str) -> str:
    return f"Api-Key {key}"
