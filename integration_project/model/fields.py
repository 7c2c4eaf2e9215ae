"""A data object declared by its fields (the YAML form): it builds the pydantic model and the `DataObject`.

Each field names a type and its rules; the model built from them validates records as a
hand-written pydantic model with the same types would (tests/model/test_yaml_objects.py).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, ValidationInfo, create_model
from pydantic import field_validator
from pydantic_extra_types.country import CountryAlpha2

from integration_project.model.data_object import DataObject, ObjectBase
from integration_project.model.email import Email
from integration_project.model.strict import Strict
from integration_project.model.system import check_name

FieldType = Literal["string", "email", "country", "decimal", "integer", "boolean", "datetime", "date",
                    "enum", "reference"]

# Letters are accepted in any case and with surrounding blanks, as the systems write them.
Country = Annotated[CountryAlpha2, BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v)]

_TYPES: dict[str, Any] = {"string": str, "email": Email, "country": Country, "decimal": Decimal,
                          "integer": int, "boolean": bool, "datetime": datetime, "date": date,
                          "reference": str}
# The options each type takes; an option given to another type is an error, not ignored.
_OPTIONS = {"values": {"enum"}, "object": {"reference"}, "scale": {"decimal"}, "precision": {"decimal"},
            "min": {"decimal", "integer"}, "max": {"decimal", "integer"},
            "pattern": {"string"}, "min_length": {"string"}, "max_length": {"string"}, "strip": {"string"}}
_NEEDS = {"enum": "values", "reference": "object", "decimal": "scale"}


class FieldSpec(Strict):
    """One canonical field: its type, whether a record must have it, its rules and its flags."""

    type: FieldType = Field(description="the kind of value (docs/objects.md: what each accepts)")
    description: str | None = Field(None, description="shown in the column schema of the docs and the UI")
    required: bool = Field(True, description="a record without it is invalid; else it may be missing (null)")
    pii: bool = Field(False, description="it holds personal data")
    source: str | None = Field(None, description="the system that owns this field (field-level source of truth)")
    values: list[str] | None = Field(None, validate_default=True, description="enum: the allowed values")
    object: str | None = Field(None, validate_default=True,
                               description="reference: the object whose id it holds; loads translate it "
                               "into the consumer's id and wait until that record is there")
    scale: int | None = Field(None, validate_default=True, description="decimal: digits after the point")
    precision: int | None = Field(None, validate_default=True, description="decimal: digits in all")
    min: float | None = Field(None, validate_default=True, description="decimal, integer: the smallest value")
    max: float | None = Field(None, validate_default=True, description="decimal, integer: the largest value")
    pattern: str | None = Field(None, validate_default=True, description="string: a regular expression it matches")
    min_length: int | None = Field(None, validate_default=True, description="string: the fewest characters")
    max_length: int | None = Field(None, validate_default=True, description="string: the most characters")
    strip: bool = Field(False, validate_default=True,
                        description="string: surrounding blanks are removed before the rules apply")

    @field_validator(*_OPTIONS)
    @classmethod
    def _fits_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind, option = info.data.get("type"), info.field_name
        if kind is None or option is None:  # the type itself is wrong: that is the error to show
            return value
        given = value is not None and value is not False
        if given and kind not in _OPTIONS[option]:
            raise ValueError(f"a field of type {kind} takes no {option} (only {' or '.join(sorted(_OPTIONS[option]))})")
        if not given and _NEEDS.get(kind) == option:
            raise ValueError(f"a field of type {kind} needs {option}")
        if option == "values" and given and (not value or len(set(value)) != len(value)):
            raise ValueError("expected distinct values, at least one")
        if option in ("scale", "precision", "min_length", "max_length") and given and value < 0:
            raise ValueError("must not be negative")
        if option == "precision" and given and value < (info.data.get("scale") or 0):
            raise ValueError("must be at least the scale")
        if option == "max" and given and info.data.get("min") is not None and value < info.data["min"]:
            raise ValueError("must be at least min")
        if option == "object" and given:
            check_name(value)
        if option == "pattern" and given:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    def annotation(self) -> Any:
        """The pydantic type of this field, with its rules."""
        if self.type == "enum":
            base: Any = Literal[tuple(self.values or ())]
        elif self.type == "string" and (self.strip or self.pattern or self.min_length is not None
                                        or self.max_length is not None):
            base = Annotated[str, StringConstraints(strip_whitespace=self.strip or None, pattern=self.pattern,
                                                    min_length=self.min_length, max_length=self.max_length)]
        elif self.type in ("decimal", "integer"):
            base = Annotated[Decimal if self.type == "decimal" else int, Field(
                ge=_bound(self.min), le=_bound(self.max), decimal_places=self.scale, max_digits=self.precision)]
        else:
            base = _TYPES[self.type]
        return base if self.required else base | None


def _bound(value: float | None) -> int | Decimal | None:
    """A bound as written: 0, not 0.0, in the messages of the records it refuses."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else Decimal(str(value))


class DeclaredObject(ObjectBase):
    """A data object declared by its fields, as a YAML file does (`integration_project.DataObjectComponent`)."""

    fields: dict[str, FieldSpec] = Field(min_length=1, description="canonical field name -> its type and rules")

    @field_validator("fields")
    @classmethod
    def _field_names(cls, fields: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for name in fields:
            check_name(name)
        return fields

    def data_object(self) -> DataObject:
        """The DataObject this declares, with its generated pydantic model."""
        model = create_model(  # type: ignore[call-overload]
            "".join(part.title() for part in self.name.split("_")), __doc__=self.description,
            **{name: (spec.annotation(), Field(... if spec.required else None, description=spec.description))
               for name, spec in self.fields.items()})
        return DataObject(
            **self.model_dump(exclude={"fields"}), model=model,
            pii=[n for n, s in self.fields.items() if s.pii],
            references={n: s.object for n, s in self.fields.items() if s.object},
            field_sources={n: s.source for n, s in self.fields.items() if s.source})

    @staticmethod
    def declared_paths(fields: dict[str, FieldSpec]) -> dict[str, str]:
        """Where the DataObject's derived fields are written here: `references.x` is `fields.x.object`."""
        paths = {f"references.{n}": f"fields.{n}.object" for n, s in fields.items() if s.object}
        paths.update((f"field_sources.{n}", f"fields.{n}.source") for n, s in fields.items() if s.source)
        return paths
