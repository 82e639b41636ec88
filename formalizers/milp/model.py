"""The five-element model: sets, parameters, variables, objective, constraints.

This is the artifact a language model fills in as JSON (or a person writes as JSON or YAML). The
schema checks shape only; ``formalizers.milp.linear.compile_model`` checks meaning (every symbol
declared, indices in range, terms linear) and says what is wrong in words a model can act on.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.errors import ArtifactError, Diagnostic, schema_diagnostics

IDENT = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
Identifier = Annotated[
    str, Field(pattern=IDENT, description="a name: a letter, then letters, digits or _")
]
Member = StrictInt | Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^,\[\]]+$")]
"""A set member: an integer or a non-empty string without commas or brackets (they would make
instance names such as ``x[a,b]`` ambiguous)."""
Number = float
ParamValues = dict[str | int, Any] | list[Any]
"""Indexed parameter data: nested JSON objects keyed by member (one level per index set), or
nested lists in the order of the set's members."""

_BINDER = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s+in\s+([A-Za-z][A-Za-z0-9_]*)\s*$")


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _no_bool(v: Any) -> Any:
    """A number field's input, refusing JSON ``true``/``false`` (pydantic would read them as 1
    and 0: a model that says ``"value": true`` has a mistake, not a number)."""
    if isinstance(v, bool):
        raise ValueError(f"expected a number, not {str(v).lower()}")
    return v


class SetDef(_Base):
    """A finite set of members that parameters, variables and constraints are indexed by."""

    name: Identifier
    members: list[Member] = Field(max_length=100_000)
    description: str = ""

    @field_validator("members")
    @classmethod
    def _unique(cls, members: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for m in members:
            key = str(m)
            if key in seen:
                raise ValueError(f"member {m!r} appears twice")
            seen.add(key)
        return members


class ParamDef(_Base):
    """A known number, scalar (``value``) or indexed by sets (``values``, with an optional ``default``
    for index tuples not listed)."""

    name: Identifier
    index: list[Identifier] = Field(default_factory=list, max_length=8)
    value: Number | None = None
    values: ParamValues | None = None
    default: Number | None = None
    unit: str = ""
    description: str = ""

    _numbers = field_validator("value", "default", mode="before")(_no_bool)

    @model_validator(mode="after")
    def _shape(self) -> ParamDef:
        if not self.index:
            if self.value is None:
                raise ValueError(f"scalar parameter '{self.name}' needs a 'value'")
            if self.values is not None:
                raise ValueError(
                    f"scalar parameter '{self.name}' has 'values'; give 'index' or use 'value'"
                )
        else:
            if self.values is None and self.default is None:
                raise ValueError(f"indexed parameter '{self.name}' needs 'values' (or a 'default')")
            if self.value is not None:
                raise ValueError(f"indexed parameter '{self.name}' has 'value'; use 'values'")
        return self


class VarDef(_Base):
    """A decision variable, scalar or indexed by sets.

    ``lower`` and ``upper`` are numbers or expressions in scalar parameters (``"capacity / 2"``); a
    bound that differs by index is a constraint. ``lower`` defaults to 0 and ``null`` means unbounded.
    """

    name: Identifier
    index: list[Identifier] = Field(default_factory=list, max_length=8)
    domain: Literal["continuous", "integer", "binary"] = "continuous"
    lower: Number | str | None = 0.0
    upper: Number | str | None = None
    unit: str = ""
    description: str = ""

    _bounds = field_validator("lower", "upper", mode="before")(_no_bool)

    @field_validator("domain", mode="before")
    @classmethod
    def _domain_alias(cls, v: Any) -> Any:
        aliases = {
            "real": "continuous",
            "reals": "continuous",
            "float": "continuous",
            "int": "integer",
            "integers": "integer",
            "bool": "binary",
            "boolean": "binary",
        }
        return aliases.get(v.lower(), v.lower()) if isinstance(v, str) else v


class IndexBinder(_Base):
    """``i in SET``: one index of a constraint family."""

    name: Identifier
    set: Identifier

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            m = _BINDER.match(data)
            if not m:
                raise ValueError(f"index {data!r} must look like 'i in SET'")
            return {"name": m.group(1), "set": m.group(2)}
        return data


class ObjectiveDef(_Base):
    """The one objective: ``sense`` and a linear ``expression``."""

    sense: Literal["minimize", "maximize"]
    expression: str = Field(min_length=1, max_length=20_000)
    name: Identifier = "objective"
    description: str = ""

    @field_validator("sense", mode="before")
    @classmethod
    def _sense_alias(cls, v: Any) -> Any:
        if isinstance(v, str):
            low = v.strip().lower()
            if low in ("min", "minimise", "minimize", "minimization"):
                return "minimize"
            if low in ("max", "maximise", "maximize", "maximization"):
                return "maximize"
        return v


class ConstraintDef(_Base):
    """A family of constraints: one instance per combination of ``index`` members that satisfies
    ``condition``. ``expression`` is ``lhs <= rhs``, ``lhs >= rhs``, ``lhs == rhs`` or
    ``lo <= expr <= hi``. ``description`` keeps the request's words it came from."""

    name: Identifier
    index: list[IndexBinder] = Field(default_factory=list, max_length=8)
    condition: str | None = Field(default=None, max_length=20_000)
    expression: str = Field(min_length=1, max_length=20_000)
    description: str = ""

    @field_validator("index", mode="before")
    @classmethod
    def _index_text(cls, v: Any) -> Any:
        # "i in A, j in B" as one string is a common shorthand.
        if isinstance(v, str):
            return [part for part in v.split(",") if part.strip()]
        return v

    @field_validator("condition", mode="before")
    @classmethod
    def _empty_condition(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v


class FiveElementModel(_Base):
    """A linear or mixed-integer optimization model in five elements."""

    name: str = Field(default="model", max_length=200)
    description: str = ""
    sets: list[SetDef] = Field(default_factory=list, max_length=1_000)
    parameters: list[ParamDef] = Field(default_factory=list, max_length=10_000)
    variables: list[VarDef] = Field(min_length=1, max_length=10_000)
    objective: ObjectiveDef
    constraints: list[ConstraintDef] = Field(default_factory=list, max_length=10_000)

    def to_json(self) -> dict[str, Any]:
        """The model as plain JSON data (defaults omitted where they carry no information)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return cls.model_json_schema()


def symbol_kinds(model: FiveElementModel) -> dict[str, str]:
    """Map each declared name to ``set``, ``parameter`` or ``variable``."""
    kinds: dict[str, str] = {}
    for s in model.sets:
        kinds.setdefault(s.name, "set")
    for p in model.parameters:
        kinds.setdefault(p.name, "parameter")
    for v in model.variables:
        kinds.setdefault(v.name, "variable")
    return kinds


def five_element_from_data(data: Any) -> FiveElementModel:
    """Validate parsed JSON/YAML data as a five-element model; ``ArtifactError("schema")`` if not."""
    if not isinstance(data, dict):
        raise ArtifactError(
            "schema", [Diagnostic("model", f"expected a JSON object, found {type(data).__name__}")]
        )
    try:
        return FiveElementModel.model_validate(data)
    except ValidationError as e:
        raise ArtifactError(
            "schema",
            schema_diagnostics(e, "model"),
            "the model does not fit the five-element schema",
        ) from e
