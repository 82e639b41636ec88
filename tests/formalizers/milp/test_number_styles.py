"""The two number styles of the optimization formalizer: single numbers as named parameters, or
written in the expressions that use them (``inline``), in the prompt and in the examples shown."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.errors import InputError
from agent.types import Request
from conftest import agent_with, golden_json, scripted
from formalizers.milp.formalizer import (
    MilpFormalizer,
    inline_numbers,
    load_examples,
    system_prompt,
)
from formalizers.milp.linear import compile_model
from formalizers.milp.model import five_element_from_data
from formalizers.milp.retrieval import load_bank
from solvers import highs
from solvers.verify import verify_linear


def _optimum(model: dict[str, Any]) -> tuple[Any, float | None]:
    lm = compile_model(five_element_from_data(model))
    result = highs.solve(lm)
    assert verify_linear(lm, result).ok
    return result.status, result.objective


@pytest.mark.parametrize("source", ["bank", "bundled"])
def test_every_example_inlined_is_the_same_problem_and_shorter(source: str) -> None:
    models = (
        [e.model for e in load_bank()] if source == "bank" else [e.model for e in load_examples()]
    )
    shorter = 0
    for model in models:
        inlined = inline_numbers(model)
        assert not [p for p in inlined.get("parameters", []) if not p.get("index")]
        (status, value), (status2, value2) = _optimum(model), _optimum(inlined)
        assert status == status2
        assert value == pytest.approx(value2, rel=1e-9, abs=1e-9)
        shorter += len(json.dumps(inlined)) < len(json.dumps(model))
    assert shorter >= len(models) // 2


def test_inlining_keeps_indexed_tables_indices_and_quoted_members() -> None:
    model = {
        "name": "m",
        "sets": [{"name": "P", "members": ["p", "cap"]}],
        "parameters": [
            {"name": "p", "value": 7},
            {"name": "cap", "value": 12.5},
            {"name": "share", "value": 0.3},
            {"name": "profit", "index": ["P"], "values": {"p": 3, "cap": 4}},
        ],
        "variables": [{"name": "x", "index": ["P"], "upper": "cap"}],
        "objective": {"sense": "maximize", "expression": "sum(profit[p] * x[p] for p in P)"},
        "constraints": [
            {"name": "c1", "expression": "x['cap'] + x['p'] <= cap"},
            {"name": "c2", "index": ["p in P"], "expression": "x[p] <= share * cap + p - p"},
        ],
    }
    out = inline_numbers(model)
    assert [p["name"] for p in out["parameters"]] == ["profit"]
    assert out["variables"][0]["upper"] == "12.5"
    assert out["objective"]["expression"] == "sum(profit[p] * x[p] for p in P)"
    assert out["constraints"][0]["expression"] == "x['cap'] + x['p'] <= 12.5"
    assert out["constraints"][1]["expression"] == "x[p] <= 0.3 * 12.5 + p - p"
    assert model["parameters"][0] == {"name": "p", "value": 7}  # the input is not changed
    assert inline_numbers({"parameters": [], "variables": []}) == {
        "parameters": [],
        "variables": [],
    }


def test_the_system_prompt_of_each_style_says_where_numbers_go() -> None:
    named, inline = system_prompt("named"), system_prompt("inline")
    assert "$" not in named.replace('"$"', "") and "$parameters" not in inline
    assert "Copy every number from the request into a parameter" in named
    assert '"unit": "$"' in named
    assert "in the expression that uses it" in inline and "into a parameter" not in inline
    with pytest.raises(ValueError, match="numbers must be one of"):
        system_prompt("words")


def test_an_inline_request_shows_inlined_examples_and_names_its_style() -> None:
    item = load_bank()[5]
    named = MilpFormalizer(scripted(), examples="retrieved", exclude=(item.id,), numbers="named")
    inline = MilpFormalizer(scripted(), examples="retrieved", exclude=(item.id,), numbers="inline")
    msgs_named, msgs_inline = named.messages(item.request), inline.messages(item.request)
    shown_named = [json.loads(m["content"]) for m in msgs_named if m["role"] == "assistant"]
    shown_inline = [json.loads(m["content"]) for m in msgs_inline if m["role"] == "assistant"]
    assert shown_inline == [inline_numbers(m) for m in shown_named] != shown_named
    assert msgs_inline[0]["content"] == system_prompt("inline") != msgs_named[0]["content"]
    assert inline.version() == named.version() + "+inline"
    assert MilpFormalizer(scripted()).numbers == "inline"  # the default (DEFAULT_NUMBERS)
    # A revision keeps the style.
    revising = inline.revising(shown_inline[0], "make it 6000 g")
    assert revising.numbers == "inline"
    assert revising.messages(item.request)[0]["content"] == system_prompt("inline")


def test_the_numbers_option_reaches_the_formalizer_and_a_bad_one_is_named() -> None:
    client = scripted(golden_json("knapsack.json"))
    request = "Make chairs and tables for the most profit with 100 hours."
    extra = {"numbers": "inline", "examples": "fixed", "grounding": "report"}
    answer = agent_with(client).solve(Request(request, kind="milp", extra=extra))
    assert answer.verified
    system = client.chat_model.calls[0][0]["content"]
    assert system == system_prompt("inline")
    with pytest.raises(InputError, match="numbers must be one of"):
        agent_with(scripted("{}")).solve(Request(request, kind="milp", extra={"numbers": "words"}))
