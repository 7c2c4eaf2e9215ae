"""A system of the landscape: who owns it, how to reach its API, and its bindings to objects."""

from __future__ import annotations

import os
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from integration_project.model.binding import Binding

NAME_RE = r"^[a-z][a-z0-9_]*$"
ENV_RE = r"^[A-Z_][A-Z0-9_]*$"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TEAM = re.compile(r"^team:[A-Za-z0-9_-]+$")

Name = Annotated[str, Field(pattern=NAME_RE)]
EnvName = Annotated[str, Field(pattern=ENV_RE, description="name of an environment variable")]


def _owner(value: str) -> str:
    if not (_TEAM.match(value) or _EMAIL.match(value)):
        raise ValueError(f"owner {value!r} is neither 'team:<name>' nor an email address")
    return value


Owner = Annotated[str, AfterValidator(_owner)]


class Strict(BaseModel):
    """Base of every declaration: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Auth(Strict):
    """How to authenticate to a system's API; only environment variable names, never values."""

    type: Literal["bearer", "api_key", "basic", "oauth2_client_credentials", "none"] = "bearer"
    token_env: EnvName | None = None
    header: str = "Authorization"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    client_id_env: EnvName | None = None
    client_secret_env: EnvName | None = None
    token_url: str | None = None

    def env_names(self) -> list[str]:
        """The environment variables this auth reads."""
        names = (self.token_env, self.username_env, self.password_env)
        return [n for n in (*names, self.client_id_env, self.client_secret_env) if n]

    def secret(self, env_name: str) -> SecretStr:
        """Read one credential from the environment at run time."""
        value = os.environ.get(env_name)
        if value is None:
            raise KeyError(f"environment variable {env_name} is not set")
        return SecretStr(value)


class Api(Strict):
    """A system's API: where it is, which version is pinned, how to authenticate."""

    connector: str = Field(description="connector that speaks this API, e.g. hubspot, stripe, rest")
    base_url: str
    base_url_env: EnvName | None = Field(None, description="overrides base_url when set")
    version: str = Field(description="the pinned API version")
    docs_url: str | None = None
    auth: Auth = Auth(type="none")

    def url(self) -> str:
        """The base URL in force: the environment override, else the declared one."""
        return (os.environ.get(self.base_url_env) if self.base_url_env else None) or self.base_url


class Webhook(Strict):
    """How a system signs the webhooks it sends us."""

    scheme: Literal["standard_webhooks", "stripe", "hubspot_v3", "shopify", "hmac"]
    secret_env: EnvName


class System(Strict):
    """One system of the business, declared once (in Python or in a Components YAML file)."""

    name: Name
    title: str
    vendor: str
    kind: str = Field(description="Dagster kind, drawn as the vendor's icon in the UI")
    owners: list[Owner] = Field(min_length=1)
    description: str
    api: Api | None = None
    webhook: Webhook | None = None
    bindings: list[Binding] = Field(default_factory=list)
