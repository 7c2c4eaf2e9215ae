"""An API version's published support end: lint warns the declared days before it and fails after
it, and the docs show it on the system's page and in the landscape's table."""

from datetime import date, timedelta
from pathlib import Path

import docs_landscapes as L
import networkx as nx
import pytest
from click.testing import CliRunner

from docs_gen.cli import lint as lint_command
from docs_gen.graph import build_graph
from docs_gen.lint import lint
from docs_gen.site import build

ENDS = date(2027, 9, 30)
SOURCE = "https://developers.example.com/versioning"
MAIL = L.System("mail", "Mailer", "mailer", ["team:marketing"], "basic", ["MAIL_KEY"],
                support={"released": "2026-03-30", "support_ends": ENDS.isoformat(), "support_source": SOURCE,
                         "support_warning_days": 90})


@pytest.fixture(scope="module")
def graph() -> nx.MultiDiGraph:
    return build_graph(L.with_system(MAIL, "campaign", "crm"))


def lifecycle_findings(g: nx.MultiDiGraph, today: date) -> list[str]:
    return [str(f) for f in lint(g, today) if f.rule.startswith("api_")]


def test_no_finding_before_the_declared_warning_days(graph: nx.MultiDiGraph) -> None:
    assert lifecycle_findings(graph, ENDS - timedelta(days=91)) == []


def test_a_warning_from_the_declared_days_before_the_end(graph: nx.MultiDiGraph) -> None:
    assert lifecycle_findings(graph, ENDS - timedelta(days=90)) == [
        f"warning: api_support_ending: system:mail: Mailer API 2024-06-01 out of support on 2027-09-30, "
        f"in 90 days ({SOURCE})"]


def test_an_error_from_the_end_on(graph: nx.MultiDiGraph) -> None:
    expected = f"error: api_unsupported: system:mail: Mailer API 2024-06-01 out of support since 2027-09-30 ({SOURCE})"
    assert lifecycle_findings(graph, ENDS) == [expected]
    assert lifecycle_findings(graph, ENDS + timedelta(days=400)) == [expected]


def test_the_warning_days_are_the_declared_ones() -> None:
    declared = L.System("mail", "Mailer", "mailer", ["team:marketing"],
                        support={"support_ends": ENDS.isoformat(), "support_warning_days": 10})
    g = build_graph(L.with_system(declared, "campaign", "crm"))
    assert lifecycle_findings(g, ENDS - timedelta(days=11)) == []
    assert [f.split(":")[1].strip() for f in lifecycle_findings(g, ENDS - timedelta(days=10))] == ["api_support_ending"]


def test_lint_command_judges_at_the_given_day_and_exits_1_after_the_end() -> None:
    runner = CliRunner()
    args = ["-m", "docs_lifecycle_defs:defs"]
    before = runner.invoke(lint_command, [*args, "--today", "2027-07-02"])
    after = runner.invoke(lint_command, [*args, "--today", "2027-09-30"])
    assert before.exit_code == 0, before.output
    assert "warning: api_support_ending: system:mail: Mailer API 2024-06-01 out of support on 2027-09-30, in 90 days" \
        in before.output
    assert after.exit_code == 1 and "error: api_unsupported: system:mail:" in after.output


def test_the_docs_show_the_support_end(graph: nx.MultiDiGraph, tmp_path: Path) -> None:
    build(graph, tmp_path / "html")
    system = (tmp_path / "html" / "systems" / "mail.html").read_text()
    assert (f'<dt>Vendor support of that version</dt><dd>until 2027-09-30 (<a href="{SOURCE}">vendor\'s page</a>)'
            "</dd>") in system
    index = (tmp_path / "html" / "index.html").read_text()
    assert (f'<tr><td>mail</td><td>Mailer</td><td>2024-06-01</td><td>2026-03-30</td><td>until 2027-09-30 '
            f'(<a href="{SOURCE}">vendor\'s page</a>)</td></tr>') in index
    assert "<tr><td>crm</td><td>HubSpot</td><td>2024-06-01</td><td></td><td>not in the lifecycle table</td></tr>" \
        in index
    build(graph, tmp_path / "md", fmt="markdown")
    page = (tmp_path / "md" / "docs" / "systems" / "mail.md").read_text()
    assert f"- **Vendor support of that version:** until 2027-09-30 ([vendor's page](<{SOURCE}>))" in page
