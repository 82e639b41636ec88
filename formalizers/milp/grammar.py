"""The five-element model's grammar: ``FiveElementModel``'s JSON schema, bounded (``Bounds``), with
``ParamDef``'s validator restated as schema where a schema can state it (``five_element_schema``).
A complete sample is checked by the project's own reader (``five_element_from_data``)."""

from __future__ import annotations

import copy
import dataclasses
import json
from functools import cache
from typing import Any

from agent.llm.grammar import REPEAT_LIMIT, Bounds, Grammar, schema_grammar
from formalizers.milp.grounding import request_quantities
from formalizers.milp.model import FiveElementModel, five_element_from_data


def five_element_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Restate ``ParamDef``'s validator as schema: a parameter is either scalar (no ``index``, a
    ``value``, no ``values``) or indexed (a non-empty ``index`` and ``values``, no ``value``)."""
    out = copy.deepcopy(schema)
    defs = out.get("$defs", {})
    pd = defs.get("ParamDef")
    if pd is None:
        return out
    props = pd["properties"]
    scalar_props = {k: v for k, v in props.items() if k != "values"}
    scalar_props["index"] = {**props["index"], "maxItems": 0}
    scalar_props["value"] = {"type": "number"}
    indexed_props = {k: v for k, v in props.items() if k != "value"}
    indexed_props["index"] = {**props["index"], "minItems": 1}
    values = props["values"]
    variants = [v for v in values.get("anyOf", [values]) if v.get("type") != "null"]
    indexed_props["values"] = {"anyOf": variants} if len(variants) > 1 else variants[0]
    base = {k: v for k, v in pd.items() if k not in ("properties", "required")}
    defs["ParamDef"] = {
        "anyOf": [
            {**base, "properties": scalar_props, "required": ["name", "value"]},
            {**base, "properties": indexed_props, "required": ["name", "index", "values"]},
        ]
    }
    return with_questions(out)


QUESTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "questions": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "maxItems": 10,
        }
    },
    "required": ["questions"],
    "additionalProperties": False,
}
"""The other reply the formalizer's prompt allows: ``{"questions": [...]}`` when the request
leaves out a number the model needs (read as ``NeedsInformation``)."""


def with_questions(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (the model's, ``$defs`` kept at the top) or the questions reply: the grammar
    must allow what the prompt asks for, on every backend that honours it."""
    model = {k: v for k, v in schema.items() if k != "$defs"}
    out: dict[str, Any] = {"anyOf": [model, QUESTIONS_SCHEMA]}
    if "$defs" in schema:
        out["$defs"] = schema["$defs"]
    return out


def asked_questions(data: Any) -> list[str] | None:
    """The questions of a reply that asks instead of modelling (a ``questions`` list of strings
    and no ``variables``), else None."""
    if not (isinstance(data, dict) and "questions" in data and "variables" not in data):
        return None
    questions = data["questions"]
    if isinstance(questions, list) and questions and all(isinstance(q, str) for q in questions):
        return questions
    return None


def _five_element_validator(text: str) -> Any:
    data = json.loads(text)
    if isinstance(data, dict) and set(data) == {"questions"}:
        questions = asked_questions(data)
        if questions is None or not all(q.strip() for q in questions):
            raise ValueError("questions must be a non-empty list of non-empty strings")
        return data
    return five_element_from_data(data)


@cache
def five_element_grammar(bounds: Bounds | None = None) -> Grammar:
    """The five-element model (``formalizers.milp.model.FiveElementModel``) as JSON, under
    ``bounds`` (default ``Bounds()``); built once per bounds."""
    return schema_grammar(
        FiveElementModel,
        bounds,
        name="five-element",
        artifact="milp",
        refine=five_element_schema,
        validator=_five_element_validator,
    )


MIN_ITEMS = 8
"""The fewest items any list of a request's model may hold under ``request_max_items``."""


def request_max_items(request: str) -> int:
    """The longest list (parameters, variables, constraints, a set's members, an indexed
    parameter's entries) a model of ``request`` may need: ``2 n + 4`` for a request that states
    ``n`` quantities, or its largest whole number up to ``REPEAT_LIMIT`` ("12 months" may make a
    12-member set), at least ``MIN_ITEMS``. Every bank model has at most ``n + 2`` parameters; a
    small model decoding greedily can instead fall into a loop (``c1_limit``, ``c2_limit``...
    ``c29_limit``) that only its time limit ends. Under this limit the loop ends where no faithful
    model could go, and the model must move on."""
    quantities = request_quantities(request)
    wholes = [
        int(v)
        for q in quantities
        for v in q.values
        if float(v).is_integer() and 0 < v <= REPEAT_LIMIT
    ]
    return max(MIN_ITEMS, 2 * len(quantities) + 4, *wholes)


def five_element_grammar_for(request: str) -> Grammar:
    """``five_element_grammar`` for one request: its lists bounded by ``request_max_items``; an
    engine's own bounds (``Grammar.with_bounds``) apply too, and may tighten the request's limit
    but never loosen it."""
    cap = request_max_items(request)

    def under(bounds: Bounds) -> Grammar:
        limit = cap if bounds.max_items is None else min(cap, bounds.max_items)
        grammar = five_element_grammar(dataclasses.replace(bounds, max_items=limit))
        return dataclasses.replace(grammar, with_bounds=under)

    return under(Bounds())
