"""A sandbox for test suites: every chosen system on a free loopback port (pytest-agnostic)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ._config import SYSTEMS
from ._runner import Sandbox


@contextlib.contextmanager
def free_port_sandbox(data_dir: Path, systems: Sequence[str] | None = None, **kwargs: Any) -> Iterator[Sandbox]:
    """Start `Sandbox(data_dir, systems, **kwargs)` on free ports; stop it on exit.

    In a conftest: `with free_port_sandbox(tmp_path_factory.mktemp("sandbox"), ["crm"]) as sb: yield sb`.
    """
    chosen = list(SYSTEMS if systems is None else systems)
    with Sandbox(data_dir, chosen, {s: 0 for s in chosen}, **kwargs) as sandbox:
        yield sandbox
