"""`integrations up`: the whole product on loopback: sandbox systems, Dagster UI, generated docs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx

from integration_project.connectors.http import ALLOW_PRIVATE_ENV
from integration_project.model import Landscape, load_landscape
from integration_project.orchestration.instance import ensure_instance
from integration_project.sandbox import SYSTEMS, Sandbox, SandboxError


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

    Ctrl-C stops everything.
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly when terminated too
    landscape = load_landscape("definitions")
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    sandbox = Sandbox(data_dir, ports={s: 0 for s in SYSTEMS} if free_ports else None, size=size,
                      webhook_url=f"{receiver_url}/webhooks/{{system}}")
    click.echo(f"starting the sandbox ({', '.join(sandbox.systems)}) ...")
    try:
        sandbox.start()
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    env = {**os.environ, **sandbox_env(landscape, sandbox),
           "DAGSTER_HOME": str(ensure_instance())}
    dagster_url, docs_url = f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{docs_port}"
    children = {
        "receiver": subprocess.Popen([_tool("integrations"), "webhooks", "serve", "--port",
                                      str(receiver_port)], env=env),
        "dagster": subprocess.Popen([_tool("dagster"), "dev", "-h", "127.0.0.1", "-p", str(dagster_port),
                                     "-w", "workspace.yaml"], env=env),
        "docs": subprocess.Popen([_tool("integrations"), "docs", "serve", "--port", str(docs_port),
                                  "--dagster-url", dagster_url], env=env),
    }
    try:
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
        for process in children.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in children.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        sandbox.stop()
