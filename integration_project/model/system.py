"""A system of the landscape: who owns it, how to reach its API, and its bindings to objects."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from integration_project.model.api import Api, Strict, check_env
from integration_project.model.binding import Binding

NAME_RE = r"^[a-z][a-z0-9_]*$"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TEAM = re.compile(r"^team:[A-Za-z0-9_-]+$")

# Validation lives in validators on plain `str` fields: Dagster Components derive the YAML schema
# from these models and accept no constrained (Annotated) types in nested models.


def check_name(value: str) -> str:
    """A lower-case identifier, usable in asset keys and job names."""
    if not re.match(NAME_RE, value):
        raise ValueError(f"{value!r} is not a name: lower-case letters, digits and _")
    return value


def check_owner(value: str) -> str:
    """Dagster's owner format: 'team:<name>' or an email address."""
    if not (_TEAM.match(value) or _EMAIL.match(value)):
        raise ValueError(f"owner {value!r} is neither 'team:<name>' nor an email address")
    return value


class Webhook(Strict):
    """How a system signs the webhooks it sends us."""

    scheme: Literal["standard_webhooks", "stripe", "hubspot_v3", "shopify", "hmac"]
    secret_env: str
    retention_days: int = Field(7, description="days a processed event stays in the inbox, refusing a "
                                "replay of it, before the daily purge deletes it")

    _env = field_validator("secret_env")(check_env)

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        # a day is well over twice the signature window (the inbox's own minimum)
        if value < 1:
            raise ValueError("must be at least 1 day")
        return value


class System(Strict):
    """One system of the business, declared once (in Python or in a Components YAML file)."""

    name: str
    title: str
    vendor: str
    kind: str = Field(description="Dagster kind, drawn as the vendor's icon in the UI")
    owners: list[str] = Field(min_length=1)
    description: str
    api: Api | None = None
    webhook: Webhook | None = None
    bindings: list[Binding] = Field(default_factory=list)

    _name = field_validator("name")(check_name)

    def api_for(self, binding: Binding) -> Api | None:
        """The channel a binding reads or writes through: its own (e.g. a file export), else the system's API."""
        return binding.api or self.api

    @field_validator("owners")
    @classmethod
    def _owners(cls, owners: list[str]) -> list[str]:
        return [check_owner(o) for o in owners]
