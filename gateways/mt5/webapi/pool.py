"""A bounded pool of Web API sessions: at most `size` authenticated connections per process.

The Web API's session is its TCP connection and requests on one connection are answered in
order, so one connection serializes every caller of the process. The pool keeps up to `size`
`WebApiClient`s, each its own connection with its own handshake, keep-alive ping and lazy
re-authentication. A thread takes one, sends its requests on it and gives it back; a thread
that finds every session taken waits (at most the request timeout) for one to come back, so
no more than `size` connections are ever open. Sessions are made only when needed, and the
last one given back is the next one taken, so a single thread keeps using one connection.
"""

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gateways.errors import TransientGatewayError

from .client import GATEWAY, Stats, WebApiClient


class ClientPool:
    """Up to `size` sessions made by `factory`; `session()` lends one to the calling thread."""

    def __init__(
        self, factory: Callable[[], WebApiClient], size: int, *, wait_seconds: float = 30.0
    ) -> None:
        if size < 1:
            raise ValueError("a pool holds at least one connection")
        self.size = int(size)
        self.wait_seconds = float(wait_seconds)
        self._factory = factory
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._idle: list[WebApiClient] = []  # a stack: the last given back is taken first
        self._made: list[WebApiClient] = []

    @classmethod
    def of(cls, client: WebApiClient) -> "ClientPool":
        """A pool of exactly this one session."""
        pool = cls(lambda: client, 1, wait_seconds=getattr(client, "timeout", 30.0))
        pool._made.append(client)
        pool._idle.append(client)
        return pool

    @contextmanager
    def session(self) -> Iterator[WebApiClient]:
        client = self.acquire()
        try:
            yield client
        finally:
            self.release(client)

    def acquire(self) -> WebApiClient:
        self._after_fork()
        deadline = time.monotonic() + self.wait_seconds
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if len(self._made) < self.size:
                    client = self._factory()
                    self._made.append(client)
                    return client
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TransientGatewayError(
                        f"all {self.size} MT5 Web API connections stayed busy for "
                        f"{self.wait_seconds:g} s (MT5_WEBAPI_CONNECTIONS)",
                        gateway=GATEWAY,
                        code="pool_exhausted",
                    )
                self._cond.wait(left)

    def release(self, client: WebApiClient) -> None:
        with self._cond:
            if client in self._made and client not in self._idle:
                self._idle.append(client)
                self._cond.notify()

    def peek(self) -> WebApiClient:
        """A session without taking it (the one a lone thread would use next)."""
        self._after_fork()
        with self._cond:
            if self._idle:
                return self._idle[-1]
            if self._made:
                return self._made[-1]
            client = self._factory()
            self._made.append(client)
            self._idle.append(client)
            return client

    def clients(self) -> list[WebApiClient]:
        with self._cond:
            return list(self._made)

    def stats(self) -> Stats:
        """The sessions' counters added up."""
        total = Stats()
        for client in self.clients():
            stats = client.stats
            total.calls += stats.calls
            total.sent_bytes += stats.sent_bytes
            total.received_bytes += stats.received_bytes
            total.logins += stats.logins
            for path, count in list(stats.by_path.items()):
                total.by_path[path] = total.by_path.get(path, 0) + count
        return total

    def close(self) -> None:
        """Log every session out (the pool can be used again: sessions reconnect lazily)."""
        for client in self.clients():
            client.close()

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            # A forked worker starts with no sessions: its parent's sockets are not its own.
            self._reset()
