"""One error hierarchy for the framework; catch at the level you care about.

IntegrationError
├── DeclarationError        a landscape that cannot load (all problems listed at once)
├── CredentialError         a declared credential's environment variable is not set
├── ConnectorError          talking to a system failed
│   ├── TransientError      worth retrying: timeout, connection reset, 5xx, 429
│   ├── PermanentError      retrying will not help: 4xx, invalid payload
│   └── StopRun             the vendor refuses every call (401, a revoked permission): stop, refuse no record
└── WebhookError            an inbound request was refused (carries the HTTP status)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache


class IntegrationError(Exception):
    """Base of every error the framework raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a declaration: where, which declaration, which field, what."""

    location: str  # "path:line", or "path" where the line is unknown
    declaration: str  # e.g. "system crm" or "object customer"
    field: str  # dotted path of the field, e.g. "bindings[0].cron"
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.declaration}: {self.field}: {self.message}"


class DeclarationError(IntegrationError):
    """The landscape has problems; `problems` lists every one found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def declaration_error(problems: list[Problem]) -> DeclarationError:
    """A DeclarationError; raised inside a Dagster process, one Dagster prints as its lines alone.

    Dagster prints a stack trace under any error raised while it loads a code location, except an
    error it forwards from a code server (DagsterUserCodeProcessError), printed as its message:
    so `dg check defs` and the UI show the problems as `integrations check` does, no traceback.
    """
    if "dagster" not in sys.modules:  # importing Dagster costs seconds; only in its processes
        return DeclarationError(problems)
    return _dagster_declaration_error()(problems)


@cache
def _dagster_declaration_error() -> type[DeclarationError]:
    from dagster._core.errors import DagsterUserCodeProcessError
    from dagster_shared.error import SerializableErrorInfo

    class DagsterDeclarationError(DeclarationError, DagsterUserCodeProcessError):
        def __init__(self, problems: list[Problem]):
            self.problems = problems
            text = "\n".join(str(p) for p in problems)
            info = SerializableErrorInfo(text, [], "DeclarationError")
            DagsterUserCodeProcessError.__init__(self, text, user_code_process_error_infos=[info])

    return DagsterDeclarationError


class CredentialError(IntegrationError):
    """A credential the landscape declares is missing from the environment; `env_name` says which."""

    def __init__(self, env_name: str):
        super().__init__(f"environment variable {env_name} is not set")
        self.env_name = env_name


class ConnectorError(IntegrationError):
    """A call to a system failed."""


class TransientError(ConnectorError):
    """A failure worth retrying (timeout, connection error, 5xx, 429)."""

    def __init__(self, message: str, retry_after: float | None = None, unsent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.unsent = unsent  # refused before the vendor acted (a throttle): safe to send again, a create too


class PermanentError(ConnectorError):
    """A failure retrying will not fix (4xx other than 429, a payload the system rejects)."""


class StopRun(ConnectorError):
    """The vendor refuses every call, not one record (a rotated token, a revoked permission): the run
    stops with its records pending, none dead-lettered, and the next run sends them."""


class WebhookError(IntegrationError):
    """An inbound webhook request was refused; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
