"""The base of every declaration model."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base of every declaration: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
