"""One sandbox on free loopback ports, shared by the sandbox tests of a session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integration_project.sandbox import Sandbox
from integration_project.sandbox.testing import free_port_sandbox


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """crm and billing, seed 42, 50 contacts."""
    with free_port_sandbox(tmp_path_factory.mktemp("sandbox"), ["crm", "billing"], seed=42, size=50) as sb:
        yield sb
