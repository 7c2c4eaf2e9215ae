"""How to reach a system: its API (or another channel, such as a drop folder) and its credentials."""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from integration_project.errors import CredentialError
from integration_project.model.lifecycle import Support, support
from integration_project.model.rest import Endpoint, Errors, Resource
from integration_project.model.strict import Strict

ENV_RE = r"^[A-Z_][A-Z0-9_]*$"


def check_env(value: str | None) -> str | None:
    """An environment variable name: credentials are never written inline."""
    if value is not None and not re.match(ENV_RE, value):
        raise ValueError("expected the NAME of an environment variable (credentials are never inline)")
    return value


class Auth(Strict):
    """How to authenticate to a system's API; only environment variable names, never values."""

    type: Literal["bearer", "api_key", "basic", "oauth2_client_credentials", "none"] = "bearer"
    token_env: str | None = None
    header: str = Field("Authorization", description="api_key in the header, or the oauth2 access token: the "
                        "header's name (an access token in Authorization is sent as Bearer, in another header bare)")
    location: Literal["header", "query"] = Field("header", description="api_key: sent in a header or a query parameter")
    param: str = Field("api_key", description="api_key in the query: the parameter's name")
    username_env: str | None = None
    password_env: str | None = None
    client_id_env: str | None = None
    client_secret_env: str | None = None
    token_url: str | None = None
    client_auth: Literal["basic", "post"] = Field(
        "basic", description="oauth2: the client id and secret sent to token_url in Basic auth "
        "(client_secret_basic) or in the form body (client_secret_post, RFC 6749 2.3.1)")

    _envs = field_validator("token_env", "username_env", "password_env", "client_id_env",
                            "client_secret_env")(check_env)

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        needs = {"bearer": ("token_env",), "api_key": ("token_env",), "basic": ("username_env", "password_env"),
                 "oauth2_client_credentials": ("client_id_env", "client_secret_env", "token_url")}
        missing = [name for name in needs.get(self.type, ()) if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth type {self.type!r} needs {', '.join(missing)}")
        return self

    def env_names(self) -> list[str]:
        """The environment variables this auth reads."""
        names = (self.token_env, self.username_env, self.password_env)
        return [n for n in (*names, self.client_id_env, self.client_secret_env) if n]

    def secret(self, env_name: str) -> SecretStr:
        """Read one credential from the environment at run time."""
        value = os.environ.get(env_name)
        if value is None:
            raise CredentialError(env_name)
        return SecretStr(value)


class Api(Strict):
    """A system's API: where it is, which version is pinned, how to authenticate."""

    connector: str = Field(description="connector that speaks this API, e.g. hubspot, stripe, rest")
    base_url: str
    base_url_env: str | None = Field(None, description="environment variable overriding base_url")
    version: str = Field(description="the pinned API version")
    docs_url: str | None = None
    support_warning_days: int = Field(90, description="`integrations lint` warns this many days before "
                                      "the vendor's published support end of `version` (model/lifecycle.toml), "
                                      "and fails after it")
    auth: Auth = Auth(type="none")
    requests_per_second: float | None = Field(
        None, description="the vendor's request budget, shared by every flow and process (on every "
                          "machine when the hub store is on PostgreSQL)")
    concurrency: int = Field(4, description="writes a flow keeps in flight at once to this API (within "
                             "requests_per_second): the lever when each call waits on the vendor")
    max_in_flight: int | None = Field(
        None, description="the vendor's limit of requests in flight at once, from every flow and process "
        "of this machine (Mailchimp: 10 simultaneous connections); else the connector's own, if it knows one")
    min_share_of_previous: float = Field(
        0.5, description="full exports (connector csv): an export with fewer rows than this share of the last "
        "one committed is quarantined, not read; 0 turns the check off (an empty export is always quarantined)")

    follow_hosts: list[str] = Field(
        default_factory=list, description="other hosts whose absolute links (a next page, a file) are followed, "
        "without credentials: credentials are sent to the API's own host only, and a link elsewhere is refused")
    allow_private_network: bool = Field(
        False, description="the API is on a private, loopback or link-local address (10/8, 172.16/12, "
        "192.168/16, 127/8, 169.254/16, fc00::/7, fe80::/10, ::1, localhost, *.internal), checked on every "
        "address the host resolves to before connecting: refused unless true (or "
        "INTEGRATIONS_ALLOW_PRIVATE_NETWORK=1, as the sandbox sets)")

    # the declarative connector's description of the API (connector: rest); see model/rest.py
    defaults: Endpoint = Field(default_factory=Endpoint, description="what every resource's listing shares "
                               "(params, headers, data_selector, paginator), overridable per resource")
    resources: dict[str, Resource] = Field(default_factory=dict, description="each resource read or written, "
                                           "by the name bindings give as `resource`")
    errors: Errors = Field(default_factory=Errors, description="how the vendor's statuses answer: transient, "
                           "permanent, stop the run; rate-limit headers")

    _env = field_validator("base_url_env")(check_env)

    @field_validator("follow_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        bad = [h for h in value if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", h)]
        if bad:
            raise ValueError(f"expected host names without scheme, port or path: {', '.join(bad)}")
        return [h.lower() for h in value]

    @field_validator("requests_per_second")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be a positive number of requests a second")
        return value

    @field_validator("min_share_of_previous")
    @classmethod
    def _share(cls, value: float) -> float:
        if not 0 <= value <= 1:
            raise ValueError("must be a share from 0 to 1")
        return value

    @field_validator("support_warning_days")
    @classmethod
    def _days(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be 0 or more days")
        return value

    @field_validator("max_in_flight")
    @classmethod
    def _simultaneous(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be 1 or more requests in flight")
        return value

    @field_validator("concurrency")
    @classmethod
    def _in_flight(cls, value: int) -> int:
        if not 1 <= value <= 64:
            raise ValueError("must be 1 to 64 writes in flight")
        return value

    def support(self) -> Support | None:
        """The vendor's published support window of the pinned version, None when not in the table."""
        return support(self.connector, self.version)

    def url(self) -> str:
        """The base URL in force: the environment override, else the declared one."""
        return (os.environ.get(self.base_url_env) if self.base_url_env else None) or self.base_url
