"""The embedded default cache: files under var/, shared by every process of one machine.

`make run` starts web (several gunicorn workers), a Celery worker (prefork children) and beat
as separate processes. What crosses them lives in the cache: the monitor's sweep record and
lock, throttle and login counters, the heartbeat. Django's locmem cache is one per process,
so the web never saw the worker's sweeps ("Last monitor sweep: never") and each process
counted its own limits. Django's file cache is shared, but its `add` is check-then-write and
its `incr` is read-then-write and resets the entry's expiry to the default timeout; here both
hold one exclusive lock file (flock) and `incr` keeps the expiry it found, so a rate-limit
window or a never-expiring counter stays what it was. Redis (REDIS_URL) replaces all of this
in production.
"""

import fcntl
import os
import pickle
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache
from django.core.files.move import file_move_safe


class FileCache(FileBasedCache):
    """Django's file cache with `add`, `incr` and `decr` atomic across processes."""

    lock_name = ".lock"
    _dir: str  # FileBasedCache's own, set in its __init__ (absent from the stubs)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._createdir()  # type: ignore[attr-defined]  # FileBasedCache's, absent from the stubs
        with open(os.path.join(self._dir, self.lock_name), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        with self._locked():
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        with self._locked():
            fname = self._key_to_file(key, version)
            try:
                with open(fname, "rb") as f:
                    # Our own files, in a 0700 directory: the same trust as Django's file cache.
                    expiry = pickle.load(f)  # noqa: S301
                    value = pickle.loads(zlib.decompress(f.read()))  # noqa: S301
            except (FileNotFoundError, EOFError):
                raise ValueError(f"Key '{key}' not found") from None
            if expiry is not None and expiry < time.time():
                self._delete(fname)
                raise ValueError(f"Key '{key}' not found")
            new_value = value + delta
            self._replace(fname, expiry, new_value)
            return new_value

    def _replace(self, fname: str, expiry: float | None, value) -> None:
        """Write `value` with the expiry it had, through a temporary file and a rename."""
        fd, tmp_path = tempfile.mkstemp(dir=self._dir)
        renamed = False
        try:
            with open(fd, "wb") as f:
                f.write(pickle.dumps(expiry, self.pickle_protocol))
                f.write(zlib.compress(pickle.dumps(value, self.pickle_protocol)))
            file_move_safe(tmp_path, fname, allow_overwrite=True)
            renamed = True
        finally:
            if not renamed:
                os.remove(tmp_path)
