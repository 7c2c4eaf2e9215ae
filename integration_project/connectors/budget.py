"""A vendor's request budget, shared by every flow and process on this machine."""

from __future__ import annotations

import fcntl
import hashlib
import time

from integration_project.settings import data_dir


class Budget:
    """At most `per_second` requests a second to one vendor: each request takes the next free slot.

    The next free slot lives in a small file under the data folder, read and moved on under an
    exclusive lock, so concurrent runs (separate processes) share one budget. Across machines,
    Dagster's pool per system caps how many steps call the vendor at once.
    """

    def __init__(self, vendor: str, per_second: float):
        folder = data_dir() / "budgets"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{hashlib.sha256(vendor.encode()).hexdigest()[:16]}.slot"
        self.interval = 1.0 / per_second

    def acquire(self) -> float:
        """Wait for this request's slot; returns the seconds waited."""
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
