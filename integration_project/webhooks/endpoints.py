"""Which systems the receiver accepts webhooks from, with their scheme and secrets."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from integration_project.model import Landscape
from integration_project.webhooks.signatures import SCHEMES, Scheme


@dataclass(frozen=True, init=False)
class Endpoint:
    """One system's endpoint: its signature scheme and secrets (several while rotating one).

    `Endpoint("stripe", SecretStr("whsec_..."))`, or `Endpoint("standard_webhooks", [new, old])`.
    `public_url` is the URL the sender calls, when a proxy in front changes it (HubSpot signs it).
    A malformed secret fails here, at start-up, rather than on every request.
    """

    scheme: Scheme
    secrets: tuple[SecretStr, ...]
    public_url: str | None

    def __init__(
        self,
        scheme: str | Scheme,
        secret: SecretStr | Sequence[SecretStr],
        *,
        public_url: str | None = None,
    ) -> None:
        if isinstance(scheme, str):
            if scheme not in SCHEMES:
                raise ValueError(f"unknown webhook scheme {scheme!r}; known: {', '.join(sorted(SCHEMES))}")
            scheme = SCHEMES[scheme]
        secrets = (secret,) if isinstance(secret, SecretStr) else tuple(secret)
        if not secrets:
            raise ValueError("an endpoint needs at least one secret")
        for each in secrets:
            scheme.key(each)
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "secrets", secrets)
        object.__setattr__(self, "public_url", public_url)


def endpoints_from_landscape(landscape: Landscape, environ: Mapping[str, str] = os.environ) -> dict[str, Endpoint]:
    """An endpoint per system that declares a webhook, its secret read from the declared variable.

    The variable may hold several secrets separated by spaces, to rotate one without downtime.
    Raises KeyError naming every variable that is unset or empty, ValueError for a malformed secret.
    """
    declared = {name: system.webhook for name, system in landscape.systems.items() if system.webhook}
    missing = sorted(hook.secret_env for hook in declared.values() if not environ.get(hook.secret_env, "").split())
    if missing:
        raise KeyError(f"webhook secrets not set: {', '.join(missing)}")
    endpoints = {}
    for name, hook in sorted(declared.items()):
        try:
            endpoints[name] = Endpoint(hook.scheme, [SecretStr(value) for value in environ[hook.secret_env].split()])
        except ValueError as error:
            raise ValueError(f"system {name}: {hook.secret_env}: {error}") from error
    return endpoints
