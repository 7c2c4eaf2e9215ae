"""A canonical data object: its pydantic model, steward, identity and personal-data fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from integration_project.model.binding import Volume, check_freshness
from integration_project.model.system import check_name, check_owner


class ObjectBase(BaseModel):
    """What every object declaration says besides its fields (Python and YAML alike)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="a lower-case identifier: its hub asset is hub/<name>")
    owner: str = Field(description="the data steward: 'team:<name>' or an email address")
    identity_key: str = Field(description="the canonical field that identifies a record")
    description: str = Field(description="what one record is, for the docs and the UI")
    match_keys: list[str] = Field(
        default_factory=list,
        description="fields that identify the real-world thing besides the id (checked for duplicates)",
    )
    max_invalid_share: float = Field(
        0.05, description="the validity check fails when a run rejects a larger share of records"
    )
    volume: Volume | None = Field(
        None, description="records per run every consumer expects, unless its binding declares its own")
    freshness_minutes: int | None = Field(
        None, description="minutes after which a consumer's copy is stale, unless its binding declares its own")

    _name = field_validator("name")(check_name)
    _owner = field_validator("owner")(check_owner)
    _freshness = field_validator("freshness_minutes")(check_freshness)


class DataObject(ObjectBase):
    """One business object (customer, order, ...) as the hub holds it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: type[BaseModel] = Field(description="the canonical pydantic model")
    pii: list[str] = Field(default_factory=list, description="fields holding personal data")
    field_sources: dict[str, str] = Field(
        default_factory=dict,
        description="field-level source of truth: canonical field -> the system that owns it",
    )
    references: dict[str, str] = Field(
        default_factory=dict,
        description="canonical field -> the object it points to; loads translate it into the "
        "consumer's own id and wait until the referenced record is there",
    )

    @property
    def fields(self) -> list[str]:
        """The canonical field names."""
        return list(self.model.model_fields)
