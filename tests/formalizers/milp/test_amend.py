"""Edits formalist makes itself to a model a language model wrote (``formalizers.milp.amend``),
and the agent taking them only when the edited model solves and is grounded."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.agent import AMENDED_BY
from agent.errors import ArtifactError
from agent.types import Request
from conftest import agent_with, scripted
from formalizers.milp.amend import (
    compound_constraints,
    renamed_clashes,
    renamed_duplicates,
    strict_inequalities,
)
from formalizers.milp.linear import compile_model
from formalizers.milp.model import five_element_from_data

TUTORS = (
    "A tutoring company hires full-time tutors and assistant tutors. Full-time tutors work 8 hours "
    "a day and get paid $650; assistant tutors work 4 hours and get paid $120. It needs 1200 hours "
    "of teaching and has a budget of $55000. How many of each should it hire to minimize staff?"
)


def tutors(objective: str = "tutors * tutors + assistants * assistants") -> dict[str, Any]:
    """The real 1.5B model's reply (2026-12-07), shortened: objective weights of 1 declared as
    parameters named like the variables."""
    return {
        "parameters": [
            {"name": "tutors", "value": 1},
            {"name": "assistants", "value": 1},
            {"name": "hours_tutor", "value": 8},
            {"name": "hours_assistant", "value": 4},
            {"name": "hours_needed", "value": 1200},
            {"name": "pay_tutor", "value": 650},
            {"name": "pay_assistant", "value": 120},
            {"name": "budget", "value": 55000},
        ],
        "variables": [
            {"name": "tutors", "domain": "integer"},
            {"name": "assistants", "domain": "integer"},
        ],
        "objective": {"sense": "minimize", "expression": objective},
        "constraints": [
            {
                "name": "hours",
                "expression": "hours_tutor * tutors + hours_assistant * assistants >= hours_needed",
            },
            {
                "name": "pay",
                "expression": "pay_tutor * tutors + pay_assistant * assistants <= budget",
            },
        ],
    }


def test_a_parameter_named_like_its_variable_is_renamed_and_read_first_in_a_square() -> None:
    model = five_element_from_data(tutors())
    with pytest.raises(ArtifactError, match="declared twice"):
        compile_model(model)
    out = renamed_clashes(model)
    assert out is not None
    edited, edits = out
    assert edited.objective.expression == ("tutors_value * tutors + assistants_value * assistants")
    assert [p.name for p in edited.parameters][:2] == ["tutors_value", "assistants_value"]
    assert edits[0].startswith("rename the parameter tutors to tutors_value")
    compile_model(edited)  # compiles now


def test_other_uses_stay_the_variable_and_a_free_name_is_found() -> None:
    data = tutors("tutors + assistants")
    data["parameters"].append({"name": "tutors_value", "value": 2})
    out = renamed_clashes(five_element_from_data(data))
    assert out is not None
    edited, _ = out
    assert edited.objective.expression == "tutors + assistants"
    assert "tutors_value_" in {p.name for p in edited.parameters}


def test_no_clash_no_edit() -> None:
    data = copy.deepcopy(tutors("tutors + assistants"))
    data["parameters"] = data["parameters"][2:]
    assert renamed_clashes(five_element_from_data(data)) is None


def test_the_agent_amends_the_clash_without_asking_the_model_again() -> None:
    client = scripted(tutors())
    answer = agent_with(client).solve(Request(TUTORS, kind="milp"))
    assert len(client.chat_model.calls) == 1
    assert answer.status.value == "OPTIMAL" and answer.verified
    first, second = answer.trace
    assert first.outcome == "symbol" and second.model_id == AMENDED_BY
    # 46 tutors and 208 assistants: 1200 hours for $54,860 (the LP bound is 253.66).
    assert answer.objective == pytest.approx(254)
    assert answer.grounding is not None and answer.grounding["ok"]
    assert "rename the parameter tutors to tutors_value" in answer.explanation


def test_under_grounding_repair_the_clash_goes_back_to_the_model() -> None:
    fixed = tutors("tutors + assistants")
    fixed["parameters"] = fixed["parameters"][2:]
    client = scripted(tutors(), fixed)
    answer = agent_with(client).solve(Request(TUTORS, kind="milp", extra={"grounding": "repair"}))
    assert len(client.chat_model.calls) == 2 and answer.objective == pytest.approx(254)
    assert "declared twice" in client.chat_model.calls[1][-1]["content"]


def test_under_voting_an_amended_sample_votes_with_its_edits_on_its_attempt() -> None:
    """Samples 1 and 3 have the clash; amended, they agree with sample 2's 254."""
    right = tutors("tutors + assistants")
    right["parameters"] = right["parameters"][2:]
    client = scripted(tutors(), right, tutors())
    answer = agent_with(client).solve(Request(TUTORS, kind="milp", extra={"samples": 3}))
    assert answer.objective == pytest.approx(254) and answer.vote is not None
    assert answer.vote["verified"] == 3 and answer.vote["confidence"] == pytest.approx(1.0)
    first, second, third = answer.trace
    assert first.edits and third.edits and second.edits is None
    assert first.outcome == "ok" and first.artifact["parameters"][0]["name"] == "tutors_value"
    assert "Amended by formalist, not by the model (sample 1's model" in answer.explanation
    # Reported only: the samples with the clash do not vote.
    client = scripted(tutors(), right, tutors())
    request = Request(TUTORS, kind="milp", extra={"samples": 3, "grounding": "report"})
    answer = agent_with(client).solve(request)
    assert answer.vote is not None and answer.vote["verified"] == 1


TOYS = (
    "Students build toy cars and toy trucks. A toy car requires 4 wheels and 7 units of wood while "
    "a toy truck requires 6 wheels and 10 units of wood. Each team has at most 40 wheels and 75 "
    "units of wood. Each team can build at most 3 toy cars and the number of toy trucks must be "
    "larger than the number toy cars. A toy car fundraises $30 and a toy truck $35. Maximize the "
    "amount fundraised."
)


def toys(larger: str, domain: str = "integer") -> dict[str, Any]:
    """The real 1.5B model's inline reply to this NL4Opt dev item (2026-12-07), shortened."""
    return {
        "variables": [
            {"name": "toy_car", "domain": domain},
            {"name": "toy_truck", "domain": domain},
        ],
        "objective": {"sense": "maximize", "expression": "30 * toy_car + 35 * toy_truck"},
        "constraints": [
            {"name": "wheels", "expression": "4 * toy_car + 6 * toy_truck <= 40"},
            {"name": "wood", "expression": "7 * toy_car + 10 * toy_truck <= 75"},
            {"name": "larger", "expression": larger},
            {"name": "cars", "expression": "toy_car <= 3"},
        ],
    }


def test_a_strict_inequality_becomes_one_more_for_whole_numbers_and_its_closure_otherwise() -> None:
    with pytest.raises(ArtifactError, match="is not allowed in a constraint"):
        compile_model(five_element_from_data(toys("toy_truck > toy_car")))
    edited = strict_inequalities(five_element_from_data(toys("toy_truck > toy_car")))
    assert edited is not None
    model, edits = edited
    assert model.constraints[2].expression == "toy_truck >= toy_car + 1"
    assert "whole numbers" in edits[0]
    below = strict_inequalities(five_element_from_data(toys("toy_car < toy_truck")))
    assert below is not None and below[0].constraints[2].expression == "toy_car + 1 <= toy_truck"
    lp = strict_inequalities(five_element_from_data(toys("toy_truck > toy_car", "continuous")))
    assert lp is not None and lp[0].constraints[2].expression == "toy_truck >= toy_car"
    assert "closure" in lp[1][0]
    half = strict_inequalities(five_element_from_data(toys("toy_truck > 0.5 * toy_car")))
    assert half is not None and half[0].constraints[2].expression == "toy_truck >= 0.5 * toy_car"
    assert strict_inequalities(five_element_from_data(toys("toy_truck >= toy_car"))) is None
    assert strict_inequalities(five_element_from_data(toys("0 < toy_truck < toy_car"))) is None


def test_the_agent_amends_a_strict_inequality_without_asking_the_model_again() -> None:
    client = scripted(toys("toy_truck > toy_car"))
    answer = agent_with(client, max_attempts=1).solve(Request(TOYS, kind="milp"))
    assert answer.verified and answer.objective == pytest.approx(240)
    assert len(client.chat_model.calls) == 1
    first, second = answer.trace
    assert first.outcome == "parse" and second.model_id == AMENDED_BY
    assert second.edits == [
        'write "toy_truck >= toy_car + 1" for "toy_truck > toy_car" (whole numbers: one more '
        "is the least that is larger)"
    ]


def with_extra(expression: str, domain: str = "integer", name: str = "extra") -> dict[str, Any]:
    """The toys reply with one more constraint, as the real model wrote such (2026-12-07, Mamo
    EasyLP samples: 13 of 48 replies added their variables' domains as constraints)."""
    data = toys("toy_truck >= toy_car + 1", domain)
    data["constraints"].append({"name": name, "expression": expression})
    return data


def compound(expression: str, domain: str = "integer") -> tuple[Any, list[str]] | None:
    return compound_constraints(five_element_from_data(with_extra(expression, domain)))


@pytest.mark.parametrize(
    ("expression", "parts"),
    [
        ("toy_car >= 0 and toy_truck >= 0", ["toy_car >= 0", "toy_truck >= 0"]),
        ("toy_car >= 0, toy_truck >= 0", ["toy_car >= 0", "toy_truck >= 0"]),
        ("toy_car >= 1 && toy_car <= 3", ["toy_car >= 1", "toy_car <= 3"]),
    ],
)
def test_a_conjunction_becomes_one_constraint_per_comparison(
    expression: str, parts: list[str]
) -> None:
    with pytest.raises(ArtifactError):
        compile_model(five_element_from_data(with_extra(expression)))
    edited = compound(expression)
    assert edited is not None
    model, edits = edited
    assert [c.expression for c in model.constraints[4:]] == parts
    assert [c.name for c in model.constraints[4:]] == ["extra", "extra_2"]
    assert edits == [f'split "{expression}" into "{parts[0]}"; "{parts[1]}"']
    compile_model(model)


@pytest.mark.parametrize(
    "expression",
    [
        "toy_car % 1 == 0 and toy_truck % 1 == 0",
        "toy_car, toy_truck in Z",
        "toy_car in {0..10} and toy_truck in {0, 1, 2, 3, 4, 5, 6, 7, 8}",
        "toy_car, toy_truck are integers",
        "(toy_car, toy_truck) \u2208 \u2124",
    ],
)
def test_a_statement_of_whole_values_becomes_the_declared_domain(expression: str) -> None:
    with pytest.raises(ArtifactError):
        compile_model(five_element_from_data(with_extra(expression)))
    # Declared integer already: the statement goes, and so does the constraint.
    kept = compound(expression)
    assert kept is not None
    assert len(kept[0].constraints) == 4 and all("drop" in e for e in kept[1])
    # Declared continuous: the statement is what says they are whole.
    made = compound(expression, "continuous")
    assert made is not None
    assert {v.domain for v in made[0].variables} == {"integer"}
    assert any(e.startswith("declare toy_car") for e in made[1])


def test_zero_or_one_is_binary_and_other_statements_are_left_alone() -> None:
    binary = compound("toy_car in {0, 1}")
    assert binary is not None and binary[0].variables[0].domain == "binary"
    assert binary[1] == ['declare toy_car binary ("toy_car in {0, 1}")']
    assert compound("toy_car >= 0") is None  # nothing to do
    assert compound("boats in Z") is None  # not a variable
    assert compound("toy_car in R") is None  # not a statement of whole values
    assert compound("0 <= toy_car <= 3 and toy_truck >= 0") is None  # two comparisons in a part
    assert compound("toy_car in {1, 3}") is not None  # listed whole values: integer


def test_the_agent_amends_a_compound_constraint_and_a_strict_one_in_one_edit() -> None:
    data = toys("toy_truck > toy_car and toy_car >= 0")
    data["constraints"].append({"name": "whole", "expression": "toy_car % 1 == 0"})
    client = scripted(data)
    answer = agent_with(client, max_attempts=1).solve(Request(TOYS, kind="milp"))
    assert answer.verified and answer.objective == pytest.approx(240)
    assert len(client.chat_model.calls) == 1
    first, second = answer.trace
    assert first.outcome == "parse" and second.model_id == AMENDED_BY
    assert second.edits == [
        'split "toy_truck > toy_car and toy_car >= 0" into "toy_truck > toy_car"; "toy_car >= 0"',
        'drop "toy_car % 1 == 0" (the declared domain says it)',
        'write "toy_truck >= toy_car + 1" for "toy_truck > toy_car" (whole numbers: one more '
        "is the least that is larger)",
    ]


def test_constraints_that_share_a_name_are_told_apart() -> None:
    data = with_extra("toy_car >= 0", name="wood")
    with pytest.raises(ArtifactError, match="used twice"):
        compile_model(five_element_from_data(data))
    edited = renamed_duplicates(five_element_from_data(data))
    assert edited is not None
    assert [c.name for c in edited[0].constraints] == ["wheels", "wood", "larger", "cars", "wood_2"]
    assert edited[1] == ['rename the second constraint named wood ("toy_car >= 0") to wood_2']
    assert renamed_duplicates(five_element_from_data(toys("toy_truck >= toy_car + 1"))) is None
    client = scripted(data)
    answer = agent_with(client, max_attempts=1).solve(Request(TOYS, kind="milp"))
    assert answer.verified and answer.objective == pytest.approx(240)
    assert len(client.chat_model.calls) == 1
