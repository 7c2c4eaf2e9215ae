"""Fixtures for docs_gen tests: fixture landscapes' graphs and built sites, each made once a session.

Not a conftest.py: another test folder imports `from conftest import …`, and a second top-level
`conftest` module would shadow it. Test modules import the fixtures they use from here; the cached
builders below make a session fixture imported by several modules run once.
"""

import functools
from collections.abc import Iterator
from pathlib import Path

import docs_landscapes as L
import networkx as nx
import pytest

from docs_gen.graph import build_graph
from docs_gen.load import load
from docs_gen.site import BuildResult, build
from tests.servers import dagster_webserver

MODULE = "docs_landscapes:defs"
ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _example_graph() -> nx.MultiDiGraph:
    """The example business's landscape, loaded through workspace.yaml as Dagster loads it."""
    defs, origin = load(workspace=ROOT / "workspace.yaml")
    return build_graph(defs, origin)


@functools.cache
def _site(name: str, base: Path) -> BuildResult:
    """A site built once per session under pytest's base temp folder."""
    g = build_graph(L.no_contract(), MODULE) if name == "good" else _example_graph()
    return build(g, base / f"docs-{name}-site")


@pytest.fixture(scope="session")
def good_graph() -> nx.MultiDiGraph:
    """The graph of the good fixture landscape."""
    return build_graph(L.good(), MODULE)


@pytest.fixture(scope="session")
def good_site(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The HTML site of the good fixture landscape plus a hand-written asset without contract keys."""
    return _site("good", tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def example_graph() -> nx.MultiDiGraph:
    """The example business's landscape."""
    return _example_graph()


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The HTML site of the example landscape."""
    return _site("example", tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real dagster-webserver on loopback serving workspace.yaml (a throwaway DAGSTER_HOME, a
    free port), for the tests that compare the docs with what Dagster serves."""
    with dagster_webserver(tmp_path_factory.mktemp("dagster_home")) as url:
        yield url
