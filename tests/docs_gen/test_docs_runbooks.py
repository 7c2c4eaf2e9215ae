"""Every generated runbook, read back and checked against the loaded Definitions: each trigger with
its default state, each link, and each printed command run for real: the DLQ commands on planted
rejects, and every command of every runbook against the sandbox seeded as `integrations up` seeds it."""

import html
import inspect
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner
from dagster_dg_cli.cli import cli as dg_cli
from docs_fixtures import example_site  # noqa: F401 (pytest fixtures)
from sitecheck import parse

from docs_gen.load import load
from docs_gen.site import BuildResult
from integration_project import contract as c
from integration_project.cli import main
from integration_project.connectors import is_live
from integration_project.launcher import up
from integration_project.model import Flow, load_landscape
from integration_project.runtime.engine import Stats, commit
from integration_project.runtime.store import Store, dlq, ledger
from integration_sandbox import Sandbox
from integration_sandbox.landscape import sandbox_env
from integration_sandbox.testing import free_port_sandbox

ROOT = Path(__file__).resolve().parents[2]
DAGSTER_UI = "http://127.0.0.1:3000"  # the docs build's default Dagster UI base
COMMAND = re.compile(r"^(?:<pre><code>)?((?:integrations dlq|dg launch) [^\n<]+)", re.M)  # each printed command
TRIGGER_ROW = re.compile(r'<tr><td><a href="[^"]+">(schedule|sensor) <code>([^<]+)</code></a></td>.*?'
                         r'<td>(.*?)</td><td class="state-(\w+)">', re.S)


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    """The example's Definitions, loaded as Dagster loads them."""
    return load(workspace=ROOT / "workspace.yaml")[0]


def _flow_jobs(defs: dg.Definitions) -> dict[str, set[str]]:
    """Flow name -> the jobs tagged with it (a source's realtime job names several)."""
    out: dict[str, set[str]] = {}
    for job in defs.jobs or []:
        for flow in filter(None, job.tags.get(c.TAG_FLOW, "").split(",")):
            out.setdefault(flow, set()).add(job.name)
    return out


def _runbooks(site: BuildResult) -> dict[str, str]:
    """Each runbook's HTML, without the line-break hints (<wbr>) inside long names."""
    return {p.stem: p.read_text().replace("<wbr>", "") for p in sorted((site.out / "flows").glob("*.html"))}


def test_every_flow_that_runs_has_a_runbook(example_site: BuildResult, defs: dg.Definitions) -> None:
    """Each flow a job runs has its page, and no page is blank (a hub-only leg says what it is)."""
    books = _runbooks(example_site)
    assert set(_flow_jobs(defs)) <= set(books) and len(books) == len(_flow_jobs(defs))
    for name in ("payment_billing_to_hub", "ticket_support_to_hub"):
        what = re.sub(r"<[^>]+>", "", books[name].split("<dt>What</dt>", 1)[1].split("</dd>", 1)[0])
        assert "into the hub: a hub-only leg" in what and "to ," not in what, what
    index = (example_site.out / "index.html").read_text()
    rows = re.findall(r'<tr><td><a href="flows/[^"]+">[^<]+</a></td><td>(.*?)</td>\s*<td>(.*?)</td><td>(.*?)</td>', index)
    assert len(rows) == len(books) and all(all(cell.strip() for cell in row) for row in rows)  # no blank cells


def test_each_runbook_lists_every_trigger_of_its_flow(example_site: BuildResult, defs: dg.Definitions) -> None:
    """A runbook's schedules and sensors are exactly those running its flow's jobs, with their default
    state and job (a realtime flow's sensor included: sensors carry no flow tag)."""
    repo = defs.get_repository_def()
    automations = [(s.name, {s.job_name}, s.default_status.value) for s in repo.schedule_defs]
    automations += [(s.name, {t.job_name for t in s.targets}, s.default_status.value)
                    for s in repo.sensor_defs if s.targets]
    books = _runbooks(example_site)
    sensors_seen = 0
    for flow, jobs in _flow_jobs(defs).items():
        expected = {name: (targets & jobs, state.lower()) for name, targets, state in automations if targets & jobs}
        shown = {name: (set(re.findall(r">([^<]+)</a>", job_cell)), state)
                 for _, name, job_cell, state in TRIGGER_ROW.findall(books[flow])}
        assert shown == expected, flow
        sensors_seen += sum(1 for name in shown if name.endswith("sensor"))
    realtime = [f for f in load_landscape("definitions").flows() if f.mode == "realtime" and is_live(f)]
    assert sensors_seen == len(realtime)  # every realtime flow's sensor is on its runbook
    assert "order_shop_realtime_sensor" in books["order_shop_to_fulfilment"]
    billing = {name for _, name, _, _ in TRIGGER_ROW.findall(books["customer_crm_to_billing"])}
    assert billing == {"customer_crm_to_billing_schedule", "customer_crm_realtime_sensor",
                       "reconcile_customer_crm_to_billing_schedule"}


def test_each_runbook_link_resolves_to_a_definition(example_site: BuildResult, defs: dg.Definitions) -> None:
    """Links inside the site lead to a page; links to the Dagster UI name an asset, job, schedule or
    sensor of the loaded Definitions; there is no other link and no placeholder."""
    repo = defs.get_repository_def()
    names = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    names |= {j.name for j in defs.jobs or []} | {s.name for s in [*repo.schedule_defs, *repo.sensor_defs]}
    for page in sorted((example_site.out / "flows").glob("*.html")):
        text = page.read_text()
        assert "{{" not in text and "None" not in re.sub(r"<[^>]+>", "", text), page.name
        for link in parse(page).links:
            parts = urlsplit(link)
            if not parts.scheme:
                assert (page.parent / parts.path).resolve().is_file(), (page.name, link)
                continue
            assert link.startswith(DAGSTER_UI + "/"), (page.name, link)
            path = parts.path.strip("/").split("/", 1)[1]
            assert path in names, (page.name, link)


def test_printed_dlq_commands_return_the_flows_rejects(example_site: BuildResult, tmp_path: Path) -> None:
    """Park a validation reject per object (the engine files it under the source's leg into the hub)
    and a load reject per flow; each runbook's `dlq list` command, run as printed, lists exactly the
    rejects its flow misses: its own and its object's validation rejects."""
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    store, landscape = Store(url), load_landscape("definitions")
    validation: dict[str, int] = {}  # object -> id of its validation reject
    for obj, leg in landscape.ingests().items():
        commit([{}], leg, store, "test-run", Stats())  # {} fails every model
        validation[obj] = store.rows(dlq, object=obj)[0]["id"]
    own: dict[str, int] = {}
    for flow in landscape.flows():
        with store.transaction() as conn:
            store.dead_letter(conn, flow=flow.name, obj=flow.object.name, stage="load", record_id="r1",
                              payload={}, reason=f"{flow.consumer.name} said 422", run_id="test-run")
        own[flow.name] = max(r["id"] for r in store.rows(dlq, flow=flow.name))
    objects = {f.name: f.object.name for f in landscape.flows()}
    for name, text in _runbooks(example_site).items():
        commands = [html.unescape(cmd) for cmd in re.findall(r"^(?:<pre><code>)?(integrations dlq [^\n<]+)$", text, re.M)]
        assert [cmd.split(" --flow ")[0] for cmd in commands] == [
            "integrations dlq list", "integrations dlq replay --dry-run", "integrations dlq replay"], name
        assert len({cmd.split(" --flow ")[1] for cmd in commands}) == 1  # replay selects what list shows
        done = CliRunner().invoke(main, commands[0].split()[1:], env={"INTEGRATIONS_DATABASE_URL": url})
        assert done.exit_code == 0, done.output
        listed = {int(line.split()[0]) for line in done.stdout.splitlines() if line.strip()}
        obj = objects.get(name) or max((o for o in landscape.objects if name.startswith(f"{o}_")), key=len)
        expected = {validation[obj]} | ({own[name]} if name in own else set())
        assert listed == expected, (name, done.stdout)


def test_check_and_the_docs_count_alike(example_site: BuildResult) -> None:
    """`integrations check` and the landing page say the same counts, labelled the same way."""
    done = CliRunner().invoke(main, ["check"])
    assert done.exit_code == 0 and done.stdout.startswith("ok: ")
    said = done.stdout.strip()[len("ok: "):]
    landscape = load_landscape("definitions")
    flows = landscape.flows()
    legs = len(landscape.ingests()) - len({f.object.name for f in flows if is_live(f)})
    assert said == (f"{len(landscape.systems)} systems (+ the hub), {len(landscape.objects)} objects, "
                    f"{len(flows)} flows to consumers, {legs} hub-only legs")
    assert f'<p class="lead">{said} ·' in (example_site.out / "index.html").read_text()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Every sandbox system seeded as `integrations up` seeds it, on free ports."""
    size = next(p.default for p in up.params if p.name == "size")
    seed = inspect.signature(Sandbox).parameters["seed"].default
    with free_port_sandbox(tmp_path_factory.mktemp("demo"), seed=seed, size=size) as sb:
        yield sb


def _printed(text: str) -> list[str]:
    return [html.unescape(cmd) for cmd in COMMAND.findall(text)]


def _ids(output: str) -> list[int]:
    """The DLQ entry ids a listing or a replay printed (its first column; 0: no entry)."""
    return [int(line.split()[0]) for line in output.splitlines() if line.strip()]


def _dlq(store: Store) -> list[tuple]:
    return sorted((r["id"], r["status"], r["attempts"]) for r in store.rows(dlq))


def test_every_printed_command_runs_against_the_sandbox(example_site: BuildResult, demo: Sandbox, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """From a fresh hub: each runbook's `dg launch` runs its flow (and records real rejects); then, per
    runbook, `dlq list` lists the open entries of both legs, `dlq replay --dry-run` names the same
    entries and changes nothing, and `dlq replay` says per entry what became of it, as the store
    then holds it, exit 1 exactly when one stays open. A contact fixed in the CRM is delivered."""
    landscape = load_landscape("definitions")
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for key, value in {**sandbox_env(landscape, demo), "INTEGRATIONS_DATABASE_URL": url,
                       "DAGSTER_HOME": str(tmp_path / "dagster")}.items():
        monkeypatch.setenv(key, value)
    store, books = Store(url), _runbooks(example_site)
    commands = {name: _printed(text) for name, text in books.items()}
    assert all(len(found) == 4 and found[3].startswith("dg launch --assets ") for found in commands.values())

    for name, found in commands.items():  # each flow run as its runbook says
        done = CliRunner().invoke(dg_cli, shlex.split(found[3])[1:])
        assert done.exit_code == 0, (name, done.output[-2000:])  # else "Materialization failed."
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster"))
    for name, found in commands.items():  # every asset the command names was materialized
        selection = shlex.split(found[3])[3].split(",")
        assert all(instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
                   for key in selection), (name, selection)
    assert store.rows(ledger, outcome="dead_lettered") and store.rows(dlq, status="open")  # seeded problems

    crm = httpx.Client(base_url=demo.url("crm"), headers={"Authorization": f"Bearer {demo.token('crm')}"})
    bad = next(r for r in store.rows(dlq, flow="customer_crm_to_hub", status="open") if "@-sign" in r["reason"])
    crm.patch(f"/crm/v3/objects/contacts/{bad['record_id']}",
              json={"properties": {"email": "fixed.by.sales@example.com"}}).raise_for_status()

    resolved = 0
    for name, (listing, dry_run, replay, _) in commands.items():
        leg = landscape.leg(name)
        legs = {name, leg.ingest.name} if isinstance(leg, Flow) else {name}
        expected = sorted(r["id"] for r in store.rows(dlq, status="open") if r["flow"] in legs)
        done = CliRunner().invoke(main, shlex.split(listing)[1:])
        assert done.exit_code == 0 and _ids(done.stdout) == expected, (name, done.output)

        before = _dlq(store)
        done = CliRunner().invoke(main, shlex.split(dry_run)[1:])
        assert done.exit_code == 0 and _ids(done.stdout) == expected, (name, done.output)
        assert _dlq(store) == before  # a dry run changes nothing

        done = CliRunner().invoke(main, shlex.split(replay)[1:])
        assert done.exception is None or isinstance(done.exception, SystemExit), (name, done.output)
        lines = {int(line.split()[0]): line for line in done.stdout.splitlines() if line.strip()}
        assert sorted(i for i in lines if i) == expected, (name, done.output)
        status = {r["id"]: r["status"] for r in store.rows(dlq)}
        for entry in expected:
            said = "resolved" if " resolved " in f"{lines[entry]} " else "still open"
            assert said in lines[entry] and status[entry] == ("resolved" if said == "resolved" else "open"), lines[entry]
        stayed = any(" resolved " not in f"{line} " for line in lines.values())
        assert done.exit_code == (1 if stayed else 0), (name, done.output)
        resolved += sum(1 for entry in expected if status[entry] == "resolved")

    assert store.rows(dlq, id=bad["id"])[0]["status"] == "resolved" and resolved >= 1
    billing = httpx.get(f"{demo.url('billing')}/v1/customers", params={"limit": 100},
                        headers={"Authorization": f"Bearer {demo.token('billing')}"}).json()["data"]
    assert "fixed.by.sales@example.com" in [c["email"] for c in billing]
