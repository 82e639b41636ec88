"""Incomplete requests over a set of APIs (after Agarwal et al. 2024).

A person supplies APIs (name, inputs, outputs, cost) and a request; the request becomes what the
person gave (``given``: parameter -> value) and what they want (``want``: parameters). From these,
clingo derives what is known and what is missing, and a planner orders the API calls; asking the
person (``get-info``) costs more than any chain of API calls, so it is planned only for inputs no API
can produce.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.errors import ArtifactError, Diagnostic, schema_diagnostics

Param = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="a parameter: lower case, digits, _")
]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamSpec(_Base):
    """A piece of information: ``question`` is how to ask the person for it."""

    name: Param
    description: str = ""
    question: str = ""


class ApiSpec(_Base):
    """An API: it needs every input known and makes every output known, at ``cost`` (a positive integer)."""

    name: Param
    inputs: list[Param] = Field(default_factory=list)
    outputs: list[Param] = Field(min_length=1)
    cost: int = Field(default=1, ge=1, le=1_000)
    description: str = ""


class ApiCatalog(_Base):
    """The APIs a request may use, and optional descriptions of their parameters."""

    apis: list[ApiSpec] = Field(min_length=1, max_length=500)
    parameters: list[ParamSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ApiCatalog:
        names = [a.name for a in self.apis]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"API name(s) used twice: {', '.join(sorted(dup))}")
        return self

    @property
    def all_params(self) -> list[str]:
        seen: dict[str, None] = {}
        for a in self.apis:
            for p in (*a.inputs, *a.outputs):
                seen.setdefault(p)
        for spec in self.parameters:
            seen.setdefault(spec.name)
        return list(seen)

    @property
    def produced(self) -> set[str]:
        return {p for a in self.apis for p in a.outputs}

    def question(self, param: str) -> str:
        spec = next((p for p in self.parameters if p.name == param), None)
        if spec is not None and spec.question:
            return spec.question
        what = (
            spec.description if spec is not None and spec.description else param.replace("_", " ")
        )
        return f"What is the {what}?"

    @property
    def ask_cost(self) -> int:
        """Cost of asking the person: more than every API call together, so any chain of calls is cheaper."""
        return 1 + sum(a.cost for a in self.apis)


class ApiRequest(_Base):
    """A request over a catalog: what the person ``given`` (parameter -> value) and ``want``s."""

    catalog: ApiCatalog
    given: dict[Param, str] = Field(default_factory=dict)
    want: list[Param] = Field(min_length=1)

    def with_answers(self, answers: dict[str, str]) -> ApiRequest:
        """The same request with more given values (the person's answers to the questions)."""
        return ApiRequest(catalog=self.catalog, given={**self.given, **answers}, want=self.want)

    def check(self) -> None:
        """Every parameter named must exist in the catalog; ``ArtifactError`` listing the unknown ones."""
        known = set(self.catalog.all_params)
        diags = [
            Diagnostic(
                f"given.{p}",
                f"'{p}' is not a parameter of any API",
                f"use one of: {', '.join(sorted(known))}",
            )
            for p in self.given
            if p not in known
        ]
        diags += [
            Diagnostic(
                f"want.{p}",
                f"'{p}' is not a parameter of any API",
                f"use one of: {', '.join(sorted(known))}",
            )
            for p in self.want
            if p not in known
        ]
        if diags:
            raise ArtifactError("symbol", diags, f"{len(diags)} unknown parameter(s)")

    def to_json(self) -> dict[str, Any]:
        """The whole request, catalog included: ``read_request`` takes it back (to continue after
        NEEDS_INFO with the person's answers)."""
        return self.model_dump(mode="json", exclude_defaults=True)


def read_catalog(text: str) -> ApiCatalog:
    """An API catalog from JSON or YAML text (``{"apis": [...], "parameters": [...]}``)."""
    from formalizers.offline.milp_files import safe_yaml

    data = safe_yaml(text)
    if isinstance(data, dict) and "catalog" in data:
        data = data["catalog"]
    try:
        return ApiCatalog.model_validate(data)
    except ValidationError as e:
        raise ArtifactError(
            "schema", schema_diagnostics(e, "catalog"), "the API catalog does not fit the schema"
        ) from e


def read_request(text: str) -> ApiRequest:
    """A complete formal request (``{"catalog": ..., "given": ..., "want": ...}``) from JSON or YAML."""
    from formalizers.offline.milp_files import safe_yaml

    data = safe_yaml(text)
    try:
        req = ApiRequest.model_validate(data)
    except ValidationError as e:
        raise ArtifactError(
            "schema", schema_diagnostics(e, "request"), "the request does not fit the schema"
        ) from e
    req.check()
    return req


def looks_like_api_request(text: str) -> bool:
    head = text.lstrip()[:4000]
    return bool(re.search(r"[\"']?catalog[\"']?\s*:", head)) and bool(
        re.search(r"[\"']?want[\"']?\s*:", text)
    )
