"""The example business's customer flow wired to a sandbox CRM and localstripe on loopback."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from integration_sandbox.landscape import sandbox_env
from integration_project.model import load_landscape
from integration_sandbox import Sandbox
from integration_sandbox.testing import free_port_sandbox


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The example project's declarations and config in a temp folder, to change freely."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "workspace.yaml"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "definitions", project / "definitions", ignore=shutil.ignore_patterns("__pycache__"))
    return project


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Every sandbox system on free ports, seed 7, 60 records per main object."""
    with free_port_sandbox(tmp_path_factory.mktemp("sandbox"), seed=7, size=60) as sb:
        yield sb


@pytest.fixture(scope="module")
def business_env(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment variables the example landscape reads, pointing at the sandbox and a fresh hub."""
    hub = Path(tmp_path_factory.mktemp("hub")) / "hub.sqlite"
    env = {**sandbox_env(load_landscape("definitions"), sandbox),
           "INTEGRATIONS_DATABASE_URL": f"sqlite:///{hub}"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yield its base URL."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def recording() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    """A real HTTP server recording every POST as (path, headers, body)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    received: list[tuple[str, dict[str, str], bytes]] = []

    async def record(request: Request) -> Response:
        received.append((request.url.path, dict(request.headers), await request.body()))
        return Response(status_code=200)

    with serving(Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])) as url:
        yield url, received


@contextlib.contextmanager
def behind_a_receiver(tmp_path_factory: pytest.TempPathFactory, systems: list[str], seed: int, size: int,
                      hooks_url: str, source: str = "crm") -> Iterator[tuple[Sandbox, str, dict[str, str]]]:
    """The sandbox's `systems` (posting their webhooks to `hooks_url`/<source>), a fresh hub, and the
    webhook receiver on loopback with `source`'s endpoint as declared: (sandbox, receiver URL, environment)."""
    from pydantic import SecretStr

    from integration_project.webhooks import Endpoint, Inbox, create_receiver

    landscape = load_landscape("definitions")
    with free_port_sandbox(tmp_path_factory.mktemp("sandbox"), systems, seed=seed, size=size,
                           webhook_url=f"{hooks_url}/{source}") as sb:
        env = {**sandbox_env(landscape, sb),
               "INTEGRATIONS_DATABASE_URL": f"sqlite:///{Path(tmp_path_factory.mktemp('hub')) / 'hub.sqlite'}"}
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            inbox = Inbox()
            hook = landscape.systems[source].webhook
            assert hook is not None, f"{source} declares no webhook"
            endpoints = {source: Endpoint(hook.scheme, SecretStr(env[hook.secret_env]))}
            with serving(create_receiver(endpoints, inbox)) as receiver:
                yield sb, receiver, env
            inbox.close()


@pytest.fixture
def http_recorder() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    """A real HTTP server on loopback recording every POST: (path, headers, body)."""
    with recording() as found:
        yield found


@pytest.fixture
def alert_receiver(http_recorder) -> tuple[str, Callable[[], list[dict]]]:
    """An alert webhook on loopback, and a function returning the alerts received so far."""
    import json

    url, received = http_recorder
    return f"{url}/alerts", lambda: [json.loads(body) for _, _, body in received]
