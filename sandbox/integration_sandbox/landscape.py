"""The sandbox for a landscape: which of its systems have a stand-in, and the environment that points
them at it."""

from __future__ import annotations

from integration_project.connectors.http import ALLOW_PRIVATE_ENV
from integration_project.model import Landscape

from ._config import KINDS
from ._runner import Sandbox, SandboxError

__all__ = ["Sandbox", "SandboxError", "sandbox_env", "stand_ins"]  # what `integrations up` uses


def stand_ins(landscape: Landscape) -> list[str]:
    """The landscape's systems the sandbox stands in for: a system of the same name and vendor kind."""
    return [name for name, system in landscape.systems.items() if KINDS.get(name) == system.kind]


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
        if auth.username_env:  # an email where the vendor wants one (Zendesk's {email}/token)
            env[auth.username_env] = "agent@example.com"
        if auth.client_id_env:
            env[auth.client_id_env] = "sandbox"
        if system.webhook:
            env[system.webhook.secret_env] = sandbox.webhook_secret(name)
    return env
