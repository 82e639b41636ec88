"""Grounding: a model's numbers come from the request, and the request's numbers reach the model."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import InputError, StopError
from agent.types import Request
from conftest import agent_with, scripted
from formalizers.milp.grounding import check, request_quantities
from formalizers.milp.model import five_element_from_data
from formalizers.milp.retrieval import load_bank
from solvers.base import Status

BANK = load_bank()
BAKERY = (
    "A bakery makes croissants and baguettes. A croissant needs 3 minutes of oven time and a "
    "baguette 5 minutes; the oven is free for 480 minutes a day. Each croissant uses 50 g of "
    "butter and the bakery has 4 kg of butter a day; baguettes need no butter. The bakery can "
    "sell at most 60 baguettes a day. A croissant earns $1.20 and a baguette $2.00. How many of "
    "each should it bake each day to earn the most?"
)


def bakery(oven: str = "3 * croissants + 5 * baguettes <= 480") -> dict[str, Any]:
    return {
        "variables": [
            {"name": "croissants", "domain": "integer"},
            {"name": "baguettes", "domain": "integer"},
        ],
        "objective": {"sense": "maximize", "expression": "1.2 * croissants + 2 * baguettes"},
        "constraints": [
            {"name": "oven", "expression": oven},
            {"name": "butter", "expression": "50 * croissants <= 4000"},
            {"name": "sales", "expression": "baguettes <= 60"},
        ],
    }


def test_every_bank_model_is_grounded_in_its_request() -> None:
    """No false alarm on 94 checked models of NL4Opt problems."""
    for ex in BANK:
        g = check(five_element_from_data(ex.model), ex.request)
        assert g.ok, (ex.id, g.feedback())
        assert g.checked > 0


def test_the_right_bakery_model_is_grounded_with_kilograms_as_grams() -> None:
    g = check(five_element_from_data(bakery()), BAKERY)
    assert g.ok and g.checked == 8


def test_the_issues_wrong_oven_constraint_leaves_the_oven_minutes_unused() -> None:
    """The 1.5B model's bakery: the oven written as 50 * croissants <= 480 (objective 130.8)."""
    g = check(five_element_from_data(bakery("50 * croissants <= 480")), BAKERY)
    assert not g.ok and not g.invented
    assert [q.text for q in g.unused] == ["3", "5"]
    assert "the request states '3', which the model does not use" in g.feedback()


def test_an_invented_number_is_named_with_where_it_is() -> None:
    g = check(five_element_from_data(bakery("3 * croissants + 5 * baguettes <= 450")), BAKERY)
    assert [(m.where, m.written) for m in g.invented] == [("constraint 'oven'", "450")]
    assert [q.text for q in g.unused] == ["480"]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("At least 70% of all furniture must be chairs.", 0.7),
        ("At least 70% of all furniture must be chairs.", 0.3),  # the other share: 1 - 0.7
        ("At most a third of the ads are billboards.", 1 / 3),
        ("At most a third of the ads are billboards.", 0.33),  # rounded, two decimals
        ("Twice as many vans as trucks.", 2),
        ("The line runs 8 hours; a part takes 12 minutes.", 480),  # 8 h in minutes
        ("Invest $10,000, of which at least $4,000 goes to bonds.", 6000),  # a difference
        ("thirty percent must be coffee", 0.3),
        ("one hundred thousand dollars", 100000),
    ],
)
def test_derived_numbers_are_grounded(text: str, number: float) -> None:
    data = {
        "variables": [{"name": "x"}],
        "objective": {"sense": "maximize", "expression": "x"},
        "constraints": [{"name": "c", "expression": f"x <= {number!r}"}],
    }
    g = check(five_element_from_data(data), text)
    assert not g.invented, g.feedback()


def test_a_rounding_with_one_decimal_is_not_a_third() -> None:
    data = {
        "variables": [{"name": "x"}],
        "objective": {"sense": "maximize", "expression": "x"},
        "constraints": [{"name": "c", "expression": "x <= 0.3"}],
    }
    assert check(five_element_from_data(data), "a third of the ads").invented


def test_a_declared_unused_parameter_sets_a_quantity_aside() -> None:
    data = bakery()
    data["parameters"] = [
        {"name": "unused_days", "value": 7, "description": "not needed: the plan is per day"}
    ]
    g = check(five_element_from_data(data), BAKERY + " The shop opens 7 days a week.")
    assert g.ok


def test_numbers_glued_to_names_are_not_quantities() -> None:
    quantities = [q.text for q in request_quantities("A store sells 2-piece suits and x1 units.")]
    assert quantities == []


@given(index=st.integers(0, len(BANK) - 1), offset=st.sampled_from([0.123457, 17.654321]))
@settings(max_examples=40, deadline=None)
def test_a_changed_parameter_of_a_bank_model_is_caught(index: int, offset: float) -> None:
    """A value off by a number with six decimals is no stated number, nor derived from two."""
    ex = BANK[index]
    data = copy.deepcopy(ex.model)
    param = data["parameters"][0]
    param["value"] = param["value"] + offset
    g = check(five_element_from_data(data), ex.request)
    assert any(m.where == f"parameter '{param['name']}'" for m in g.invented)


# -- in the agent ---------------------------------------------------------------------------------


def test_grounding_is_reported_apart_from_verified() -> None:
    wrong = bakery("50 * croissants <= 480")
    client = scripted(wrong)
    answer = agent_with(client).solve(Request(BAKERY, kind="milp", extra={"grounding": "report"}))
    assert len(client.chat_model.calls) == 1  # reported only: never sent back
    assert answer.status is Status.OPTIMAL and answer.verified
    assert answer.grounding == {
        "ok": False,
        "checked": 7,
        "invented": [],
        "unused": ["3", "5"],
        "misattributed": [],
        "contradicted": [],
    }
    assert "NOT grounded in the request" in answer.explanation
    assert answer.to_json()["grounding"]["ok"] is False


def test_with_grounding_repair_an_ungrounded_model_goes_back_naming_the_quantities() -> None:
    client = scripted(bakery("50 * croissants <= 480"), bakery())
    answer = agent_with(client).solve(Request(BAKERY, kind="milp", extra={"grounding": "repair"}))
    assert answer.objective == pytest.approx(1.2 * 80 + 2 * 48)  # 192, the issue's right answer
    assert answer.grounding is not None and answer.grounding["ok"]
    assert [a.outcome for a in answer.trace] == ["grounding", "ok"]
    second = client.chat_model.calls[1]
    assert "the request states '3'" in second[-1]["content"]
    assert "Grounded: all 8 numbers" in answer.explanation


def test_with_no_grounding_option_an_ungrounded_model_is_repaired() -> None:
    """The default (``DEFAULT_GROUNDING``) is ``repair``."""
    client = scripted(bakery("50 * croissants <= 480"), bakery())
    answer = agent_with(client).solve(Request(BAKERY, kind="milp"))
    assert answer.objective == pytest.approx(192)
    assert [a.outcome for a in answer.trace] == ["grounding", "ok"]
    assert answer.grounding is not None and answer.grounding["ok"]
    assert "the request states '3'" in client.chat_model.calls[1][-1]["content"]


def test_with_grounding_report_an_ungrounded_model_is_not_repaired() -> None:
    client = scripted(bakery("50 * croissants <= 480"), bakery())
    answer = agent_with(client).solve(Request(BAKERY, kind="milp", extra={"grounding": "report"}))
    assert answer.objective == pytest.approx(130.8)  # the ungrounded model's optimum
    assert [a.outcome for a in answer.trace] == ["ok"]
    assert answer.grounding is not None and not answer.grounding["ok"]
    assert len(client.chat_model.calls) == 1


def test_a_repair_call_that_fails_on_our_side_keeps_the_verified_answer() -> None:
    """A grounding repair costs time, never an answer: the model's server failing (or its time
    limit) on the repair call gives the verified, ungrounded answer, as ``report`` would."""
    wrong = bakery("50 * croissants <= 480")
    client = scripted(wrong)  # a second call raises ReplayExhausted, a StopError
    answer = agent_with(client).solve(Request(BAKERY, kind="milp"))
    assert answer.status is Status.OPTIMAL and answer.verified and not answer.error
    assert [a.outcome for a in answer.trace] == ["grounding", "error"]
    assert answer.grounding is not None and not answer.grounding["ok"]
    assert "NOT grounded in the request" in answer.explanation
    # Before any verified answer a failed call still ends the request.
    with pytest.raises(StopError):
        agent_with(scripted()).solve(Request(BAKERY, kind="milp"))


def test_when_repair_does_not_ground_it_the_verified_answer_is_still_given() -> None:
    wrong = bakery("50 * croissants <= 480")
    client = scripted(wrong, "not json", json.dumps(wrong))
    answer = agent_with(client, max_attempts=3).solve(
        Request(BAKERY, kind="milp", extra={"grounding": "repair"})
    )
    assert answer.status is Status.OPTIMAL and answer.verified and not answer.error
    # The third reply repeats the first: not solved again, its outcome carried over.
    assert [a.outcome for a in answer.trace] == ["grounding", "parse", "grounding"]
    assert answer.trace[2].repeats == 1
    assert answer.grounding is not None and not answer.grounding["ok"]


def test_a_repair_that_strays_further_does_not_replace_the_closer_answer() -> None:
    """Of the verified answers that are not grounded the loop gives the one with the fewest
    findings, the earlier on a tie, also when the last attempt is one of them."""

    def sales(m: dict[str, Any], limit: str) -> dict[str, Any]:
        m["constraints"][2]["expression"] = f"baguettes <= {limit}"
        return m

    closer = sales(bakery(), "70")  # 70 invented, 60 unused: 2 findings, optimum 192
    further = sales(bakery("50 * croissants <= 480"), "70")  # and 3 and 5 unused: 4, 150.8
    assert check(five_element_from_data(closer), BAKERY).findings == 2
    assert check(five_element_from_data(further), BAKERY).findings == 4
    answer = agent_with(scripted(closer, further), max_attempts=2).solve(
        Request(BAKERY, kind="milp", extra={"grounding": "repair"})
    )
    assert answer.objective == pytest.approx(192)
    assert [a.outcome for a in answer.trace] == ["grounding", "grounding"]
    assert answer.grounding is not None and answer.grounding["ok"] is False
    assert "'sales' is 70" in answer.explanation
    # A tie keeps the earlier one; a later one with fewer findings replaces it.
    wrong = bakery("50 * croissants <= 480")  # 2 findings, optimum 130.8
    tie = agent_with(scripted(wrong, closer), max_attempts=2).solve(
        Request(BAKERY, kind="milp", extra={"grounding": "repair"})
    )
    assert tie.objective == pytest.approx(130.8)
    better = agent_with(scripted(further, closer, wrong), max_attempts=3).solve(
        Request(BAKERY, kind="milp", extra={"grounding": "repair"})
    )
    assert better.objective == pytest.approx(192)
    assert [a.outcome for a in better.trace] == ["grounding"] * 3


def test_a_formal_input_has_no_grounding_and_a_bad_mode_is_refused() -> None:
    answer = agent_with().solve(json.dumps(bakery()))
    assert answer.grounding is None
    with pytest.raises(InputError, match="grounding must be one of"):
        agent_with(scripted(bakery())).solve(
            Request(BAKERY, kind="milp", extra={"grounding": "strict"})
        )


def test_formalize_runs_the_same_grounding_repair() -> None:
    client = scripted(bakery("50 * croissants <= 480"), bakery())
    agent = agent_with(client)
    out = agent.formalize(Request(BAKERY, kind="milp", extra={"grounding": "repair"}))
    assert out["attempts"] == 2 and out["artifact"] == bakery()
    assert "the request states '3'" in out["feedback"][0]
    # With no option (the default, repair) too.
    default = agent_with(scripted(bakery("50 * croissants <= 480"), bakery())).formalize(
        Request(BAKERY, kind="milp")
    )
    assert default["attempts"] == 2 and default["artifact"] == bakery()
    # Reported only: the first model that validates is the artifact.
    once = agent_with(scripted(bakery("50 * croissants <= 480"))).formalize(
        Request(BAKERY, kind="milp", extra={"grounding": "report"})
    )
    assert once["attempts"] == 1 and once["feedback"] == []
