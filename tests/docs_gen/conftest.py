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


ROOT = HERE.parents[1]


@pytest.fixture(scope="session")
def example_graph() -> nx.MultiDiGraph:
    """The example business's landscape, loaded through workspace.yaml as Dagster loads it."""
    from docs_gen.load import load

    defs, origin = load(workspace=ROOT / "workspace.yaml")
    return build_graph(defs, origin)


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory, example_graph: nx.MultiDiGraph) -> BuildResult:
    """The HTML site of the example landscape."""
    return build(example_graph, tmp_path_factory.mktemp("example") / "site")
