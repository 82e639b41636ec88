"""The five-element grammar allows what the MILP prompt asks for: a model, or the questions asked
when the request leaves out a number (served models get this schema as structured output, so a
grammar without the questions would make NEEDS_INFO unreachable for them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.llm.grammar import Bounds, Grammar, under_bounds
from conftest import engine_accepts
from formalizers.milp.grammar import (
    MIN_ITEMS,
    QUESTIONS_SCHEMA,
    five_element_grammar,
    five_element_grammar_for,
    request_max_items,
)
from formalizers.milp.model import FiveElementModel

MODEL = {
    "variables": [{"name": "x", "domain": "integer"}],
    "objective": {"sense": "maximize", "expression": "x"},
    "constraints": [{"name": "cap", "expression": "x <= 4"}],
}


def test_the_schema_is_a_model_or_the_questions() -> None:
    schema = json.loads(five_element_grammar().source)
    model, questions = schema["anyOf"]
    assert {"variables", "objective"} <= set(model["required"])
    assert questions["required"] == ["questions"] == QUESTIONS_SCHEMA["required"]
    assert questions["properties"]["questions"]["minItems"] == 1
    assert "$defs" in schema  # the model's references resolve from the top


def test_the_validator_reads_both_replies_and_refuses_empty_questions() -> None:
    g = five_element_grammar()
    assert isinstance(g.validate(json.dumps(MODEL)), FiveElementModel)
    asked = {"questions": ["How many hours is the oven free?"]}
    assert g.validate(json.dumps(asked)) == asked
    for bad in ({"questions": []}, {"questions": [" "]}, {"questions": "how many?"}):
        with pytest.raises(ValueError, match="questions must be"):
            g.validate(json.dumps(bad))


# -- a request's own size bounds its model's lists (``request_max_items``) ---------------------------

BANK = json.loads(
    (Path(__file__).parents[3] / "formalizers/milp/bank/nl4opt_dev.json").read_text()
)["items"]


def _lists(node: Any) -> list[int]:
    """The length of every list and every object of entries in a model's JSON."""
    out: list[int] = []
    if isinstance(node, list):
        out.append(len(node))
        for x in node:
            out += _lists(x)
    elif isinstance(node, dict):
        if "values" in node and isinstance(node["values"], dict):
            out.append(len(node["values"]))
        for x in node.values():
            out += _lists(x)
    return out


def test_every_bank_model_fits_the_bounds_of_its_own_request() -> None:
    for item in BANK:
        assert max(_lists(item["model"])) <= request_max_items(item["request"]), item["id"]


def test_a_request_bound_is_kept_under_an_engines_bounds_and_tightened_by_smaller_ones() -> None:
    request = "Make chairs and tables: 3 hours and 5 hours of work; 40 hours are free."
    cap = request_max_items(request)
    assert cap == max(MIN_ITEMS, 2 * 3 + 4, 40)  # 3 quantities; 40 could count members
    assert request_max_items("Plan 12 months; each month needs 100 units.") == 100
    assert request_max_items("Plan 12 months; each month needs 1000 units.") == 12
    assert request_max_items("Paint the fence.") == MIN_ITEMS

    def max_items(g: Grammar) -> set[int]:
        """The size limits of the model's four lists."""
        model = json.loads(g.source)["anyOf"][0]["properties"]
        return {model[k]["maxItems"] for k in ("sets", "parameters", "variables", "constraints")}

    grammar = five_element_grammar_for(request)
    assert max_items(grammar) == {cap}
    assert max_items(under_bounds(grammar, Bounds())) == {cap}  # an engine's default keeps it
    assert max_items(under_bounds(grammar, Bounds(max_items=2))) == {2}  # a tighter one wins
    assert max_items(under_bounds(grammar, Bounds(max_items=500))) == {cap}  # never loosens
    short = under_bounds(grammar, Bounds(max_string=30))  # the engine's other limits apply
    assert "{0,30}" in short.source and "{0,30}" not in grammar.source


def test_the_engine_accepts_the_bank_models_and_refuses_a_runaway_parameter_list(
    grammar_engines: dict[str, Any],
) -> None:
    from formalizers.base import compact_json

    def accepted(grammar: Grammar, data: Any) -> bool:
        bounded = under_bounds(grammar, Bounds())
        return engine_accepts(grammar_engines, "xgrammar", bounded, compact_json(data))

    for item in BANK[::8]:  # every list length of every bank model is checked above
        assert accepted(five_element_grammar_for(item["request"]), item["model"]), item["id"]
    item = BANK[0]
    cap = request_max_items(item["request"])
    looping = {
        **item["model"],
        "parameters": [{"name": f"c{i}_limit", "value": 150.0} for i in range(1, cap + 2)],
    }
    assert not accepted(five_element_grammar_for(item["request"]), looping)
    assert accepted(five_element_grammar(), looping)  # without the request's bound it would run on
