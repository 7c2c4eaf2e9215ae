"""`integrations up`: the whole product on loopback: sandbox systems, Dagster UI, generated docs."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx

from integration_project.connectors.http import ALLOW_PRIVATE_ENV
from integration_project.contract import DAGSTER_URL_ENV
from integration_project.model import Landscape, load_landscape
from integration_project.errors import DeclarationError
from integration_project.sandbox import SYSTEMS, Sandbox, SandboxError
from integration_project.sandbox.cli import EXIT_NOT_RUNNING, data_dir_option, sandbox, sandbox_folder

STOP_GRACE_S = 15.0  # after SIGTERM, what still runs in a child's process group is killed


def sandbox_env(landscape: Landscape, sandbox: Sandbox) -> dict[str, str]:
    """The environment variables the landscape declares, pointed at the sandbox's systems (which
    run on loopback: private addresses allowed)."""
    env: dict[str, str] = {ALLOW_PRIVATE_ENV: "1"}
    for name in sandbox.systems:
        system = landscape.systems.get(name)
        if system is None or system.api is None:
            continue
        for api in (system.api, *(b.api for b in system.bindings if b.api)):
            if api.base_url_env:
                env[api.base_url_env] = {"sql": sandbox.erp_database_url,
                                         "csv": lambda: str(sandbox.erp_drop_folder())}.get(
                                             api.connector, lambda: sandbox.url(name))()
        auth = system.api.auth
        for var in (auth.token_env, auth.password_env, auth.client_secret_env):
            if var:
                env[var] = sandbox.token(name)
        for var in (auth.username_env, auth.client_id_env):
            if var:
                env[var] = "sandbox"
        if system.webhook:
            env[system.webhook.secret_env] = sandbox.webhook_secret(name)
    return env


def _wait(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".data/sandbox"), show_default=True)
@click.option("--size", default=200, show_default=True, help="Seeded records per sandbox system.")
@click.option("--dagster-port", default=3000, show_default=True)
@click.option("--docs-port", default=8000, show_default=True)
@click.option("--receiver-port", default=8100, show_default=True)
@click.option("--free-ports", is_flag=True, help="Sandbox systems on free ports instead of 8101-8108.")
def up(data_dir: Path, size: int, dagster_port: int, docs_port: int, receiver_port: int,
       free_ports: bool) -> None:
    """Start the sandbox, the webhook receiver, the Dagster UI and the docs on 127.0.0.1.

    Ctrl-C (SIGINT) or SIGTERM stops everything, within STOP_GRACE_S seconds.
    """
    from integration_project.orchestration.instance import ensure_instance  # Dagster: `up` alone needs it
    from integration_project.orchestration.specs import DOCS_URL_ENV

    # Our own handlers, even where the parent ignored SIGINT (a script's background job): a caught
    # signal is reset to its default in each child at exec, an ignored one would be inherited.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupted)
    landscape = load_landscape("definitions")
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    dagster_url, docs_url = f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{docs_port}"
    sandbox = Sandbox(data_dir, ports={s: 0 for s in SYSTEMS} if free_ports else None, size=size,
                      webhook_url=f"{receiver_url}/webhooks/{{system}}")
    click.echo(f"starting the sandbox ({', '.join(sandbox.systems)}) ...")
    try:
        sandbox.start()
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:  # start() has stopped what it started
        return
    env = {**os.environ, **sandbox_env(landscape, sandbox), "DAGSTER_HOME": str(ensure_instance()),
           DOCS_URL_ENV: docs_url, DAGSTER_URL_ENV: dagster_url}  # so links go where things really are
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        children["receiver"] = _start([_tool("integrations"), "webhooks", "serve", "--port", str(receiver_port)], env)
        children["dagster"] = _start([_tool("dagster"), "dev", "-h", "127.0.0.1", "-p", str(dagster_port),
                                      "-w", "workspace.yaml"], env)
        children["docs"] = _start([_tool("integrations"), "docs", "serve", "--port", str(docs_port)], env)
        click.echo("waiting for the Dagster UI ...")
        if not _wait(f"{dagster_url}/server_info", 180):
            raise click.ClickException("the Dagster UI did not start within 180 s")
        click.echo("\nready:")
        for system in sandbox.systems:
            click.echo(f"  sandbox {system:<11} {sandbox.url(system)}")
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
        sandbox.stop()


@sandbox.command("env")
@data_dir_option
@click.option("--package", default="definitions", show_default=True, help="The landscape whose variables to set.")
@click.option("--json", "as_json", is_flag=True, help="Print the variables as a JSON object.")
def sandbox_env_command(data_dir: Path | None, package: str, as_json: bool) -> None:
    """Print the environment the landscape reads (base URLs, tokens, secrets) for the running sandbox.

    In another shell: eval "$(integrations sandbox env)". Exit 3 if no sandbox runs.
    """
    folder = sandbox_folder(data_dir)
    attached = Sandbox.attach(folder)
    if not attached.systems:
        click.echo(f"error: no sandbox is running from {folder}", err=True)
        sys.exit(EXIT_NOT_RUNNING)
    try:
        landscape = load_landscape(package)
    except DeclarationError as exc:
        raise click.ClickException(f"the landscape {package!r} has {len(exc.problems)} problem(s); "
                                   "`integrations check` lists them") from None
    variables = dict(sorted(sandbox_env(landscape, attached).items()))
    click.echo(json.dumps(variables, indent=1) if as_json else
               "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items()))
