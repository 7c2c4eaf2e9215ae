"""`integrations up`: the whole product on loopback: the Dagster UI, the webhook receiver, the
generated docs, and the sandbox's stand-ins for the systems that have one (when it is installed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import httpx

from integration_project.contract import DAGSTER_URL_ENV
from integration_project.errors import DeclarationError
from integration_project.model import Landscape, load_landscape
from integration_project.project import find

STOP_GRACE_S = 15.0  # after SIGTERM, what still runs in a child's process group is killed
SANDBOX_MISSING = "the sandbox is not installed: pip install 'integration-project[sandbox]'"


def _installed_sandbox() -> ModuleType | None:
    """The sandbox distribution (integrations-sandbox), or None when it is not installed."""
    try:
        import integration_sandbox.landscape
    except ModuleNotFoundError as exc:
        if exc.name != "integration_sandbox":
            raise
        return None
    return integration_sandbox.landscape


def sandbox_commands() -> click.Command:
    """`integrations sandbox`: the sandbox's commands, or one that says it is not installed."""
    try:
        from integration_sandbox.cli import sandbox
    except ModuleNotFoundError as exc:
        if exc.name != "integration_sandbox":
            raise
        return click.Command("sandbox", callback=_no_sandbox, help=f"Local stand-ins for vendor systems ({SANDBOX_MISSING}).",
                             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    return sandbox


def _no_sandbox() -> None:
    click.echo(f"error: {SANDBOX_MISSING}", err=True)
    sys.exit(2)


def _wait(url: str, timeout: float, process: subprocess.Popen[bytes]) -> bool:
    """Whether `url` answers within `timeout` seconds, while `process` (which serves it) still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name)) if Path(sys.executable).with_name(name).exists() \
        else shutil.which(name) or name


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A child in its own session, so that it and everything it starts can be signalled as one group."""
    return subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, start_new_session=True)


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    """Whether any process of the child's group (the child, or one it started) still runs."""
    process.poll()  # reap the child itself; its group lives on while a descendant does
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed user: it still exists
        pass
    return True


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def stop_groups(children: dict[str, subprocess.Popen[bytes]], grace: float = STOP_GRACE_S) -> list[str]:
    """SIGTERM to every child's whole process group, SIGKILL to what still runs after `grace` seconds;
    returns the names of the children whose groups had to be killed."""
    for process in children.values():
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_group_alive(p) for p in children.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    killed = [name for name, process in children.items() if _group_alive(process)]
    for name in killed:  # only groups just seen alive: an emptied group's id may already be reused
        _signal_group(children[name], signal.SIGKILL)
    for process in children.values():
        process.wait()
    return killed


def _stand_ins(stand_in: ModuleType | None, landscape: Landscape, data_dir: Path, size: int, free_ports: bool,
               webhook_url: str) -> Any:
    """The sandbox for the landscape's systems that have a stand-in, or None; says what it skips."""
    if stand_in is None:
        click.echo(f"{SANDBOX_MISSING}; no stand-in systems start")
        return None
    served = stand_in.stand_ins(landscape)
    if skipped := [name for name in landscape.systems if name not in served]:
        click.echo(f"no sandbox for {', '.join(skipped)}: they use what their declarations point at")
    if not served:
        return None
    return stand_in.Sandbox(data_dir, served, ports={s: 0 for s in served} if free_ports else None, size=size,
                            webhook_url=webhook_url)


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".data/sandbox"), show_default=True)
@click.option("--size", default=200, show_default=True, help="Seeded records per sandbox system.")
@click.option("--dagster-port", default=3000, show_default=True)
@click.option("--docs-port", default=8000, show_default=True)
@click.option("--receiver-port", default=8100, show_default=True)
@click.option("--free-ports", is_flag=True, help="Sandbox systems on free ports instead of 8101-8109.")
@click.option("--ready-timeout", default=600.0, show_default=True,
              help="Seconds to wait for the Dagster UI, the receiver and the docs to answer "
                   "(a busy machine's first start can take minutes).")
def up(data_dir: Path, size: int, dagster_port: int, docs_port: int, receiver_port: int,
       free_ports: bool, ready_timeout: float) -> None:
    """Start the sandbox's stand-ins (for the systems that have one), the webhook receiver, the
    Dagster UI and the docs of the current project, on 127.0.0.1.

    Ctrl-C (SIGINT) or SIGTERM stops everything, within STOP_GRACE_S seconds.
    """
    from integration_project.orchestration.instance import ensure_instance  # Dagster: `up` alone needs it
    from integration_project.orchestration.specs import DOCS_URL_ENV

    # Our own handlers, even where the parent ignored SIGINT (a script's background job): a caught
    # signal is reset to its default in each child at exec, an ignored one would be inherited.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupted)
    project = find().importable()
    try:
        landscape = load_landscape(project.package)
    except DeclarationError as exc:
        raise click.ClickException(f"the landscape {project.package!r} has {len(exc.problems)} problem(s); "
                                   "`integrations check` lists them") from None
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    dagster_url, docs_url = f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{docs_port}"
    stand_in = _installed_sandbox()
    sandbox = _stand_ins(stand_in, landscape, data_dir, size, free_ports, f"{receiver_url}/webhooks/{{system}}")
    if stand_in is not None and sandbox is not None:
        click.echo(f"starting the sandbox ({', '.join(sandbox.systems)}) ...")
        try:
            sandbox.start()
        except stand_in.SandboxError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:  # start() has stopped what it started
            return
    env = {**os.environ, **(stand_in.sandbox_env(landscape, sandbox) if stand_in and sandbox else {}),
           "DAGSTER_HOME": str(ensure_instance()),
           DOCS_URL_ENV: docs_url, DAGSTER_URL_ENV: dagster_url}  # so links go where things really are
    location = ["-w", str(project.workspace)] if project.workspace else ["-m", project.code_location, "-d", str(project.root)]
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if any(system.webhook for system in landscape.systems.values()):
            # every stand-in posts from 127.0.0.1: one client address, many senders
            children["receiver"] = _start([_tool("integrations"), "webhooks", "serve", "--port", str(receiver_port),
                                           "--dagster-url", dagster_url, "--max-connections-per-client", "1024"], env)
        else:
            click.echo("no system declares a webhook: no webhook receiver starts")
        children["dagster"] = _start([_tool("dagster"), "dev", "-h", "127.0.0.1", "-p", str(dagster_port),
                                      *location], env)
        children["docs"] = _start([_tool("integrations"), "docs", "serve", "--port", str(docs_port)], env)
        click.echo("waiting for the Dagster UI ...")
        answers = {"dagster": f"{dagster_url}/server_info", "receiver": f"{receiver_url}/healthz",
                   "docs": f"{docs_url}/"}  # "ready" means each of them answers, not only started
        for name, url in answers.items():
            if name in children and not _wait(url, ready_timeout, children[name]):
                raise click.ClickException(f"{name} stopped before it answered" if children[name].poll() is not None
                                           else f"{name} did not answer within {ready_timeout:g} s")
        click.echo("\nready:")
        for system in sandbox.systems if sandbox else ():
            click.echo(f"  sandbox {system:<11} {sandbox.url(system)}")
        if "receiver" in children:
            click.echo(f"  webhook receiver    {receiver_url}/webhooks/<system>")
        click.echo(f"  Dagster UI          {dagster_url}\n  docs                {docs_url}\n")
        click.echo("Ctrl-C stops everything.")
        while all(p.poll() is None for p in children.values()):
            time.sleep(1)
        failed = [name for name, p in children.items() if p.poll() is not None]
        raise click.ClickException(f"{', '.join(failed)} stopped; shutting down")
    except KeyboardInterrupt:
        click.echo("stopping ...")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the shutdown short
            signal.signal(sig, signal.SIG_IGN)
        killed = stop_groups(children)
        if killed:
            click.echo(f"killed what was left of {', '.join(killed)} after {STOP_GRACE_S:g} s")
        if sandbox is not None:
            sandbox.stop()

