"""A system's view of a data object: source of truth or consumer, mapping, trigger, bounds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from integration_project.model.api import Api


def check_freshness(value: int | None) -> int | None:
    """A positive number of minutes, or none declared."""
    if value is not None and value <= 0:
        raise ValueError("must be a positive number of minutes")
    return value


class Volume(BaseModel):
    """Expected records per run; a run outside the bounds fails its check and alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int
    max: int

    @model_validator(mode="after")
    def _bounds(self) -> "Volume":
        if not 0 <= self.min <= self.max:
            raise ValueError("expected 0 <= min <= max")
        return self


class Binding(BaseModel):
    """How one system holds one object.

    A source binding makes the system the object's source of truth and says how changes are
    detected (webhook `events`, else polling). A consumer binding is one flow: hub -> system,
    run in real time (on change) and/or on a `cron` schedule.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    object: str
    role: Literal["source", "consumer"]
    purpose: str = Field(description="one sentence: why this binding exists")
    resource: str = Field(description="the system's endpoint, table or file pattern")
    api: Api | None = Field(
        None, description="the channel this binding uses instead of the system's API, e.g. a drop folder "
        "the system's nightly file export lands in (connector csv)")
    mapping: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> the system's field (dotted path)"
    )
    compose: dict[str, str] = Field(
        default_factory=dict,
        description="consumer only: system field -> template over canonical fields, '{a} {b}'",
    )
    values: dict[str, dict[str, str | None]] = Field(
        default_factory=dict,
        description="canonical field -> {our value: the system's value, or null: not sent}: a consumer sends "
        "the system's value, and leaves the field out for null or a value not listed; a source reads the map "
        "backwards (the system's value -> ours; a value not listed is kept as read). The field must be mapped",
    )
    where: dict[str, list[str]] = Field(
        default_factory=dict,
        description="consumer only: load just the records whose canonical field has one of these values",
    )
    mode: Literal["realtime", "batch"] = "batch"
    events: list[str] = Field(default_factory=list, description="webhook event types of changes")
    cron: str | None = None
    timezone: str = "UTC"
    volume: Volume | None = Field(None, description="records per run; else the object's")
    freshness_minutes: int | None = Field(None, description="minutes after which data is stale; else the object's")
    echo_suppression: bool = Field(
        False, description="ignore our own writes when this system sends them back as changes"
    )
    on_delete: Literal["delete", "archive", "ignore"] = Field(
        "ignore", description="consumer only: what a record deleted at its source of truth becomes here: "
        "deleted, archived (the vendor's soft delete), or kept as it is")

    # Field validators, not one model validator: an error then names its field (and so its line).
    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say in one sentence why this binding exists")
        return value

    _freshness = field_validator("freshness_minutes")(check_freshness)
