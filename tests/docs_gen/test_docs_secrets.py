"""No secret reaches the docs: not the configured values, nothing that looks like one."""

import re
from pathlib import Path

import docs_landscapes as L
import networkx as nx
import pytest
from sitecheck import all_text
from docs_fixtures import example_graph  # noqa: F401 (pytest fixtures)

from docs_gen.graph import build_graph, nodes
from docs_gen.publish import backstage_yaml
from docs_gen.site import build
from integration_sandbox import DEFAULT_TOKENS, DEFAULT_WEBHOOK_SECRETS

PATTERNS = {
    "stripe webhook secret": r"whsec_[A-Za-z0-9+/=_-]{4,}",
    "stripe key": r"\b[sr]k_(?:test|live)_[A-Za-z0-9_]{4,}",
    "bearer token": r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}",
    "password in a URL": r"[a-z][a-z0-9+.-]*://[^/\s:@\"'<>]+:[^/\s@\"'<>]+@",
}


def leaks(text: str, values: list[str]) -> list[str]:
    """Configured secret values and secret-looking strings found in text."""
    found = [f"value of length {len(v)}" for v in values if v and v in text]
    return found + [f"{name}: {m.group(0)[:12]}…" for name, p in PATTERNS.items() for m in re.finditer(p, text)]


def test_the_patterns_catch_what_they_should() -> None:
    """The scan is not vacuous: each pattern finds its kind of secret."""
    sample = "whsec_abcdef sk_test_51Habc Bearer abcdefgh12345 postgres://u:pw@db/x"
    assert len(leaks(sample, [])) == 4 and leaks("auth: bearer</dd> https://h/x", []) == []


def _build_all(g: nx.MultiDiGraph, out: Path) -> str:
    """HTML site, Markdown tree, node-link JSON and Backstage export of a graph, as one text."""
    build(g, out / "html")
    build(g, out / "md", "markdown")
    (out / "catalog-info.yaml").write_text(backstage_yaml(g))
    return all_text(out, (".html", ".md", ".json", ".js", ".svg", ".yml", ".yaml"))


def test_fixture_docs_hold_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the secrets in the environment and a password in a base URL, the output shows names only."""
    for name, value in L.SECRETS.items():
        monkeypatch.setenv(name, value)
    assert L.SECRETS["ERP_DB_PASSWORD"] in L.SYSTEMS[3].base_url  # the metadata really carries one
    text = _build_all(build_graph(L.good()), tmp_path)
    assert leaks(text, list(L.SECRETS.values())) == []
    assert all(name in text for name in L.SECRETS)  # the names are documented


def test_example_docs_hold_no_sandbox_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             example_graph: nx.MultiDiGraph) -> None:
    """Every credential env var of the example set to the sandbox's value; none appears in the docs."""
    secrets = [*DEFAULT_TOKENS.values(), *DEFAULT_WEBHOOK_SECRETS.values()]
    names = [(s["name"], env) for _, s in nodes(example_graph, "system") for env in (s.get("api") or {}).get("credentials_env", [])]
    assert len(names) >= 8
    for system, env in names:
        monkeypatch.setenv(env, DEFAULT_TOKENS.get(system, "sandbox-token"))
    text = _build_all(example_graph, tmp_path)
    assert leaks(text, secrets) == []
    assert all(env in text for _, env in names)
