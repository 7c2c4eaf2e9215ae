"""Connectors of the example's declarations, against the real sandbox, with every exchange recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from integration_project.connectors import HttpConnector, connector_class, selected
from integration_project.model import Landscape
from tests.connectors.conftest import env, landscape, sandbox  # noqa: F401 - the same fixtures
from tests.contracts.recording import Recording

Recorded = Callable[[str], tuple[HttpConnector, Recording]]


@pytest.fixture
def recorded(env: dict[str, str], landscape: Landscape) -> Iterator[Recorded]:  # noqa: F811
    """`recorded("crm")`: the system's declared connector, its requests sent through a Recording."""
    opened: list[HttpConnector] = []

    def make(system: str) -> tuple[HttpConnector, Recording]:
        declared = landscape.systems[system]
        cls = connector_class(declared)
        assert cls is not None and issubclass(cls, HttpConnector) and declared.api is not None
        recording = Recording()
        connector = selected(cls(declared.api, transport=recording), declared, declared.api)  # type: ignore[call-arg]
        assert isinstance(connector, HttpConnector)
        opened.append(connector)
        return opened[-1], recording

    yield make
    for c in opened:
        c.close()
