"""Every connector against the real sandbox app of its system, configured by the example's declarations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from integration_project.connectors import Connector, connect
from integration_sandbox.landscape import sandbox_env
from integration_project.model import Landscape, load_landscape
from integration_sandbox import Sandbox
from integration_sandbox.testing import free_port_sandbox


@pytest.fixture(scope="session")
def landscape() -> Landscape:
    """The example business's declarations."""
    return load_landscape("definitions")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """All nine systems, seed 11, 40 records each; shipments stay as they are during the tests; the
    support desk refuses offset pages past 20 records (Zendesk's 10,000, scaled to the seed)."""
    options = {"fulfilment": {"advance_seconds": 3600}, "support": {"offset_limit": 20}}
    with free_port_sandbox(tmp_path_factory.mktemp("sandbox"), None, seed=11, size=40, options=options) as sb:
        yield sb


@pytest.fixture(scope="session")
def env(sandbox: Sandbox, landscape: Landscape) -> Iterator[dict[str, str]]:
    """The declared environment variables pointed at the sandbox (the ERP by its database URL)."""
    values = {**sandbox_env(landscape, sandbox), "ERP_DATABASE_URL": sandbox.erp_database_url()}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        yield values


@pytest.fixture
def connector(env: dict[str, str], landscape: Landscape) -> Iterator[Callable[[str], Connector]]:
    """`connector("shop")`: the declared connector of a system; closed after the test."""
    opened: list[Connector] = []

    def make(system: str) -> Connector:
        opened.append(connect(landscape.systems[system]))
        return opened[-1]

    yield make
    for c in opened:
        c.close()


def drain(c: Connector, resource: str, since: str | None) -> tuple[list[dict], str | None]:
    """Every record of an extraction and the last cursor it offered."""
    records, cursor = [], since
    for page in c.pages(resource, since):
        records += page.records
        cursor = page.cursor if page.cursor is not None else cursor
    return records, cursor


class Patient(httpx.HTTPTransport):
    """A test's own client of a rate-limited sandbox (billing's 25 a second, shared with the connector
    under test): a 429 is waited out and the request sent again."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        while (response := super().handle_request(request)).status_code == 429:
            response.close()
            time.sleep(0.2)
        return response
