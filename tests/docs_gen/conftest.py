"""Fixtures for docs_gen: loaded fixture landscapes, their graphs, and built sites."""

import sys
from pathlib import Path

import networkx as nx
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # the fixture landscapes load as a code location: `docs_landscapes:defs`

import docs_landscapes as L  # noqa: E402

from docs_gen.graph import build_graph  # noqa: E402
from docs_gen.site import BuildResult, build  # noqa: E402

MODULE = "docs_landscapes:defs"


@pytest.fixture(scope="session")
def good_graph() -> nx.MultiDiGraph:
    """The graph of the good fixture landscape."""
    return build_graph(L.good(), MODULE)


@pytest.fixture(scope="session")
def good_site(tmp_path_factory: pytest.TempPathFactory, good_graph: nx.MultiDiGraph) -> BuildResult:
    """The HTML site of the good fixture landscape plus a hand-written asset without contract keys."""
    return build(build_graph(L.no_contract(), MODULE), tmp_path_factory.mktemp("site") / "site")
