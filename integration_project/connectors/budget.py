"""A vendor's request budget and its limit of requests in flight, shared by every flow and process
that calls it."""

from __future__ import annotations

import fcntl
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from integration_project.connectors import locks
from integration_project.settings import data_dir


class Budget:
    """At most `per_second` requests a second to one vendor: each request takes the next free slot.

    With the hub store on PostgreSQL, a slot is the vendor's advisory lock, taken and kept for one
    interval (`locks.hold_for`): the next request, from any process on any machine, starts no
    sooner. Otherwise the next free slot lives in a small file under the data folder, read and
    moved on under an exclusive lock, so the processes of this machine share one budget.
    """

    def __init__(self, vendor: str, per_second: float):
        self.interval = 1.0 / per_second
        self.engine = locks.shared_engine()
        self.key = locks.lock_key("budget", vendor)
        self._turn = threading.Lock()  # this process's threads queue here: one waits in PostgreSQL
        folder = data_dir() / "budgets"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{hashlib.sha256(vendor.encode()).hexdigest()[:16]}.slot"

    def acquire(self) -> float:
        """Wait for this request's slot; returns the seconds waited."""
        if self.engine is None:
            return self._from_file()
        started = time.monotonic()
        with self._turn:
            locks.hold_for(self.engine, self.key, self.interval)
        return time.monotonic() - started

    def _from_file(self) -> float:
        with self.path.open("a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read().strip()
            now = time.time()
            slot = max(now, float(text) if text else 0.0)
            f.seek(0)
            f.truncate()
            f.write(repr(slot + self.interval))
        if slot > now:
            time.sleep(slot - now)
        return slot - now


class Slots:
    """At most `n` requests in flight at once to one vendor, from every thread and process of this
    machine (Mailchimp's 10 simultaneous connections): a request holds one of `n` lock files while
    it is sent and answered, and waits for a free one when all are held."""

    POLL = 0.005  # seconds between looks for a free slot

    def __init__(self, vendor: str, n: int):
        folder = data_dir() / "budgets"
        folder.mkdir(parents=True, exist_ok=True)
        stem = hashlib.sha256(vendor.encode()).hexdigest()[:16]
        self.paths = [folder / f"{stem}.{i}.inflight" for i in range(n)]

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold a free slot for the body of the `with`."""
        while True:
            for path in self.paths:
                with path.open("a") as f:  # closing it releases the lock
                    try:
                        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue
                    yield
                    return
            time.sleep(self.POLL)
