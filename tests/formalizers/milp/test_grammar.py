"""The five-element grammar allows what the MILP prompt asks for: a model, or the questions asked
when the request leaves out a number (served models get this schema as structured output, so a
grammar without the questions would make NEEDS_INFO unreachable for them)."""

from __future__ import annotations

import json

import pytest

from formalizers.milp.grammar import QUESTIONS_SCHEMA, five_element_grammar
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
