"""Readings (issue 14): a constraint that contradicts the sentence it comes from.

The wrong models here are the kinds a real 1.5B model wrote on NL4Opt dev items and the README's
bakery: a lower limit written as an upper one, a description of one sentence over the limit of
another, a description copied from a few-shot example, grams against kilograms.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from agent.agent import AMENDED_BY
from agent.types import Request
from conftest import agent_with, scripted
from formalizers.milp.grounding import (
    LOWER,
    UPPER,
    Contradiction,
    Edit,
    amended,
    asked_sense,
    check,
    contradictions,
    sentences,
    stated_direction,
    stated_unit,
)
from formalizers.milp.model import five_element_from_data
from formalizers.milp.retrieval import load_bank

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
BAKERY = (EXAMPLES / "bakery.txt").read_text(encoding="utf-8")
OVEN = (
    "A croissant needs 3 minutes of oven time and a baguette 5 minutes; the oven is free for 480 "
    "minutes a day."
)
SALES = "The bakery can sell at most 60 baguettes a day."
BUTTER = "The bakery has 4 kg of butter a day; baguettes need no butter."

MEALS = (
    "A fitness trainer meal-preps two types of meals, a salmon lunch and a bison burger. The salmon "
    "lunch contains 15 grams of protein and 8 grams of fat. The bison burger contains 30 grams of "
    "protein and 13 grams of fat. The trainer wants to get at least 160 grams of protein. How many "
    "of each meal should he eat to minimize his fat intake?"
)


def bakery(constraints: list[dict[str, str]], **params: float) -> dict[str, Any]:
    return {
        "parameters": [{"name": k, "value": v} for k, v in params.items()],
        "variables": [
            {"name": "croissants", "domain": "integer"},
            {"name": "baguettes", "domain": "integer"},
        ],
        "objective": {"sense": "maximize", "expression": "1.2 * croissants + 2 * baguettes"},
        "constraints": constraints,
    }


RIGHT_BAKERY = bakery(
    [
        {
            "name": "oven",
            "expression": "3 * croissants + 5 * baguettes <= 480",
            "description": OVEN,
        },
        {"name": "butter", "expression": "50 * croissants <= 4000", "description": BUTTER},
        {"name": "sales", "expression": "baguettes <= 60", "description": SALES},
    ]
)


def meals(protein: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "variables": [
            {"name": "salmon", "domain": "integer"},
            {"name": "bison", "domain": "integer"},
        ],
        "objective": {"sense": "minimize", "expression": "8 * salmon + 13 * bison"},
        "constraints": [{"name": "protein", "expression": protein}],
    }
    data.update(extra)
    return data


def found(data: dict[str, Any], request: str) -> list[str]:
    return [c.text() for c in contradictions(five_element_from_data(data), request)]


# -- direction ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "quantity", "direction"),
    [
        ("The trainer wants to get at least 160 grams of protein.", "160", LOWER),
        ("The seller has at most $200 to spend.", "200", UPPER),
        ("Hours cannot exceed 300 a week.", "300", UPPER),
        ("The number of trips must exceed 12.", "12", LOWER),
        ("There can be no more than 40 workers.", "40", UPPER),
        ("There must be no less than 40 workers.", "40", LOWER),
        ("The store needs more than 25 boxes.", "25", LOWER),
        ("They can make up to 500 kg a day.", "500", UPPER),
        ("It must analyze 1000 samples or more.", "1000", LOWER),
        ("A minimum of 2 trucks is needed.", "2", LOWER),
        ("At least 160 grams of protein and at most 50 grams of fat.", "50", UPPER),
        ("A croissant needs 3 minutes of oven time.", "3", None),
        ("The oven is free for 480 minutes a day.", "480", None),
        # A number joined to one with words shares them (a real item's "at least 1000 ... and
        # 800 ..."), through a list; a joined number with no words has none.
        ("If at least 1000 samples of water and 800 samples of dirt are needed", "800", LOWER),
        ("She needs at least 20 g of protein, 30 g of fat and 40 g of carbs.", "40", LOWER),
        ("It may use at most 50 g of sugar or 30 g of fat.", "30", UPPER),
        ("There are 5 apples and 3 pears.", "3", None),
        ("A rickshaw takes 50 coconuts and costs $10 a trip.", "10", None),
    ],
)
def test_the_words_next_to_a_number_give_its_direction(
    sentence: str, quantity: str, direction: str | None
) -> None:
    assert stated_direction(sentence, quantity) == direction


def test_at_least_written_as_an_upper_limit_is_named_with_the_flipped_constraint() -> None:
    [c] = contradictions(five_element_from_data(meals("15 * salmon + 30 * bison <= 160")), MEALS)
    assert c.where == 'constraint "protein"'
    assert "makes 160 an upper limit" in c.what and "makes 160 a lower limit" in c.what
    assert "The trainer wants to get at least 160 grams of protein" in c.what
    assert c.fix == 'write "15 * salmon + 30 * bison >= 160"'


TOURS = (
    "A tourism manager is planning two types of tours: X and Y. The total number of tours is "
    "limited to 500. The combined frequency of 3 times tour X and 2 times tour Y must be at least "
    "1000. The difference between the number of type X and type Y tours should not exceed 200 for "
    "balancing purposes. Each tour X costs $50 and each tour Y $30; minimize the total cost."
)


def tours(*balance: str) -> dict[str, Any]:
    """A real Mamo EasyLP reply (2026-12-07), shortened: "should not exceed 200" written as
    both sides of the difference."""
    return {
        "variables": [{"name": "x", "domain": "integer"}, {"name": "y", "domain": "integer"}],
        "objective": {"sense": "minimize", "expression": "50 * x + 30 * y"},
        "constraints": [
            {"name": "total", "expression": "x + y <= 500"},
            {"name": "frequency", "expression": "3 * x + 2 * y >= 1000"},
            *({"name": f"balance_{i}", "expression": e} for i, e in enumerate(balance)),
        ],
    }


def test_a_negated_limit_bounds_the_other_way_round() -> None:
    """``x - y >= -200`` is ``y - x <= 200``: 200 stays an upper limit, as its words say."""
    both = tours("x - y <= 200", "x - y >= -200")
    assert contradictions(five_element_from_data(both), TOURS) == []
    assert contradictions(five_element_from_data(tours("-200 <= x - y")), TOURS) == []
    [c] = contradictions(five_element_from_data(tours("x - y >= 200")), TOURS)
    assert "makes 200 a lower limit" in c.what and c.fix == 'write "x - y <= 200"'
    # y - x >= 200: the magnitude made a lower limit, turned round to the other side of it.
    [c] = contradictions(five_element_from_data(tours("x - y <= -200")), TOURS)
    assert "it makes 200 a lower limit (x - y <= -200)" in c.what
    assert c.fix == 'write "x - y >= -200"'


def test_a_difference_bounded_one_way_gets_its_other_side() -> None:
    """ "The difference between X and Y should not exceed 200" bounds it either way (Mamo's
    answers read it so: a real reply's one-sided 800 against the label 2000)."""
    [c] = contradictions(five_element_from_data(tours("x - y <= 200")), TOURS)
    assert c.where == 'constraint "balance_0"' and "one way only" in c.what
    assert (
        c.fix == 'add "y - x <= 200"' and c.edits[0].text() == 'add the constraint "y - x <= 200"'
    )
    for other in ("y - x <= 200", "x - y >= -200", "-200 <= x - y", "2 * y - 2 * x <= 400"):
        assert contradictions(five_element_from_data(tours("x - y <= 200", other)), TOURS) == []
    assert contradictions(five_element_from_data(tours("-200 <= x - y <= 200")), TOURS) == []
    # Without the word "difference" the limit may be one-sided on purpose.
    one_way = TOURS.replace("The difference between the number of", "The number of").replace(
        "tours should not exceed 200", "tours may exceed the other by at most 200"
    )
    assert contradictions(five_element_from_data(tours("x - y <= 200")), one_way) == []


def test_the_agent_adds_the_other_side_of_a_difference_itself() -> None:
    client = scripted(tours("x - y <= 200"))
    answer = agent_with(client, max_attempts=1).solve(Request(TOURS, kind="milp"))
    # x = 120, y = 320: 6000 + 9600; the one-sided model's 15000 (x = 0, y = 500) is gone.
    assert answer.verified and answer.objective == pytest.approx(15600)
    assert len(client.chat_model.calls) == 1 and answer.trace[-1].model_id == AMENDED_BY
    assert answer.trace[-1].edits == ['add the constraint "y - x <= 200"']
    assert answer.grounding is not None and answer.grounding["ok"]


@pytest.mark.parametrize(
    "protein",
    [
        "15 * salmon + 30 * bison >= 160",
        "160 <= 15 * salmon + 30 * bison",  # the limit on the left
        "15 * salmon + 30 * bison >= need",  # through a parameter
        "salmon >= 0.25 * (salmon + bison)",  # no side without variables: not judged
    ],
)
def test_a_limit_in_its_words_direction_is_not_flagged(protein: str) -> None:
    data = meals(protein, parameters=[{"name": "need", "value": 160}])
    assert found(data, MEALS) == []


@pytest.mark.parametrize(
    ("protein", "wrong"),
    [
        # Everything moved to one side: the constant is the limit, its sign turned round.
        ("160 - 15 * salmon - 30 * bison <= 0", False),
        ("15 * salmon + 30 * bison - 160 >= 0", False),
        ("0 >= 160 - (15 * salmon + 30 * bison)", False),
        ("15 * salmon + 30 * bison + -160 >= 0", False),
        # Real Mamo replies (2026-12-07): "cannot exceed 1000" as 1000 - x - y - z <= 0.
        ("160 - 15 * salmon - 30 * bison >= 0", True),
        ("15 * salmon + 30 * bison - 160 <= 0", True),
        ("0 <= 160 - 15 * salmon - 30 * bison", True),
    ],
)
def test_a_limit_moved_to_the_side_of_the_variables_is_judged(protein: str, wrong: bool) -> None:
    found_ = contradictions(five_element_from_data(meals(protein)), MEALS)
    if not wrong:
        assert found_ == []
        return
    [c] = found_
    assert "makes 160 an upper limit" in c.what and "makes 160 a lower limit" in c.what
    # The fix turns the comparison round, which reads the same way on either side.
    fixed = c.fix.removeprefix('write "').removesuffix('"')
    assert contradictions(five_element_from_data(meals(fixed)), MEALS) == []


def test_the_wrong_way_through_a_parameter_and_on_the_left_is_flagged() -> None:
    data = meals("need >= 15 * salmon + 30 * bison", parameters=[{"name": "need", "value": 160}])
    [text] = found(data, MEALS)
    assert "need = 160 an upper limit" in text


def test_a_variable_bound_against_its_words_is_flagged() -> None:
    data = meals("15 * salmon + 30 * bison >= 160")
    data["variables"][0]["upper"] = 160
    [c] = contradictions(five_element_from_data(data), MEALS)
    assert c.where == "variable 'salmon'" and "its upper bound is 160" in c.what
    assert "lower" in c.fix


# -- a description of one sentence over another's limit ------------------------------------------


def test_the_real_models_swapped_bakery_limits_and_units_are_all_named() -> None:
    """The 1.5B model's bakery (2026-12-07): 480 and 60 swapped between their sentences, and
    50 g of butter against 4 kg. The older checks passed it; it solved to 24 (the optimum is
    192)."""
    data = bakery(
        [
            {
                "name": "c1_sum",
                "expression": "croissants + baguettes <= c1_total",
                "description": SALES,
            },
            {
                "name": "c2_linear",
                "expression": "3 * croissants + 5 * baguettes <= c2_limit",
                "description": OVEN,
            },
            {
                "name": "c3_linear",
                "expression": "50 * croissants + 0 * baguettes <= c3_limit",
                "description": BUTTER,
            },
        ],
        c1_total=480,
        c2_limit=60,
        c3_limit=4,
    )
    g = check(five_element_from_data(data), BAKERY)
    assert not g.ok and g.invented == () and g.unused == () and g.misattributed == ()
    by_where = {c.where: c for c in g.contradicted}
    assert set(by_where) == {
        'constraint "c1_sum"',
        'constraint "c2_linear"',
        'constraint "c3_linear"',
    }
    assert "its limit is c1_total = 480" in by_where['constraint "c1_sum"'].what
    # The one plain variable the 60's words name, and the value: edits a small model can follow.
    assert by_where['constraint "c1_sum"'].fix == (
        'write "baguettes <= c1_total" and set the parameter c1_total to 60'
    )
    assert by_where['constraint "c2_linear"'].fix == "set the parameter c2_limit to 480"
    butter = by_where['constraint "c3_linear"']
    assert "50 g and 4 kg" in butter.what
    assert butter.fix == "write 4 kg as 4000 g: set the parameter c3_limit to 4000"
    assert "set the parameter c2_limit to 480" in g.feedback()


def test_the_right_bakery_and_a_sentence_with_two_limits_are_not_flagged() -> None:
    assert check(five_element_from_data(RIGHT_BAKERY), BAKERY).ok
    text = (
        "A suit store makes 2-piece and 3-piece suits. A 2-piece suit takes 1 hour of measuring and "
        "4 hours of stitching; a 3-piece suit 2 hours of measuring and 5 hours of stitching. The "
        "store has 150 hours of measuring time and 300 hours of stitching time available. The "
        "profit is $600 and $800. Maximize profit."
    )
    both = "The store has 150 hours of measuring time and 300 hours of stitching time available."
    data = {
        "variables": [{"name": "two_piece"}, {"name": "three_piece"}],
        "objective": {"sense": "maximize", "expression": "600 * two_piece + 800 * three_piece"},
        "constraints": [
            {"name": "m", "expression": "two_piece + 2 * three_piece <= 150", "description": both},
            {
                "name": "s",
                "expression": "4 * two_piece + 5 * three_piece <= 300",
                "description": both,
            },
        ],
    }
    assert found(data, text) == []


def test_a_description_of_the_coefficients_alone_is_not_flagged() -> None:
    data = bakery(
        [
            {
                "name": "oven",
                "expression": "3 * croissants + 5 * baguettes <= 480",
                "description": "A croissant needs 3 minutes of oven time and a baguette 5 minutes",
            }
        ]
    )
    assert found(data, BAKERY) == []


# -- a description from another problem -----------------------------------------------------------


def test_a_description_with_numbers_the_request_never_states_is_named() -> None:
    data = bakery(
        [
            {
                "name": "solid",
                "expression": "3 * croissants + 5 * baguettes <= 480",
                "description": "The lab has available 90 units of the solid and 85 units of the gas.",
            }
        ]
    )
    [text] = found(data, BAKERY)
    assert "states 90, 85, " in text and "which the request does not" in text


def test_a_description_in_another_problems_words_is_named() -> None:
    data = bakery(
        [
            {
                "name": "mix",
                "expression": "croissants >= 3 * baguettes",
                "description": "However, small boxes of chocolates are less expensive and the shop "
                "owner expects to move many of them.",
            }
        ]
    )
    [text] = found(data, BAKERY)
    assert '"chocolate"' in text and "describes another problem" in text


def test_a_paraphrase_in_common_words_is_not_foreign() -> None:
    data = bakery(
        [
            {
                "name": "oven",
                "expression": "3 * croissants + 5 * baguettes <= 480",
                "description": "total oven minutes must not exceed the limit",
            }
        ]
    )
    assert found(data, BAKERY) == []


# -- units ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "quantity", "unit"),
    [
        (BUTTER, "4", ("mass", 1000.0, "kg")),
        ("Each croissant uses 50 g of butter.", "50", ("mass", 1.0, "g")),
        ("A croissant earns $1.20.", "1.20", ("money", 100.0, "$")),
        ("It takes 30 minutes.", "30", ("time", 60.0, "minutes")),
        ("It makes 30 chairs.", "30", None),
    ],
)
def test_the_unit_written_with_a_number(sentence: str, quantity: str, unit: Any) -> None:
    assert stated_unit(sentence, quantity) == unit


@pytest.mark.parametrize(
    "butter", ["50 * croissants <= 4000", "50 * croissants <= 4 * 1000", "0.05 * croissants <= 4"]
)
def test_converted_units_are_not_flagged(butter: str) -> None:
    data = bakery([{"name": "butter", "expression": butter}])
    assert found(data, BAKERY) == []


def test_minutes_against_hours_are_named() -> None:
    text = (
        "Each chair takes 30 minutes to paint. The painter works at most 40 hours. Maximize chairs."
    )
    data = {
        "variables": [{"name": "chairs", "domain": "integer"}],
        "objective": {"sense": "maximize", "expression": "chairs"},
        "constraints": [{"name": "paint", "expression": "30 * chairs <= 40"}],
    }
    [c] = contradictions(five_element_from_data(data), text)
    assert "one hour is 60 minutes" in c.what
    assert c.fix == 'write 40 hours as 2400 minutes: write "30 * chairs <= 2400"'


# -- no false alarm; through the agent -----------------------------------------------------------


def test_no_bank_model_contradicts_its_own_request() -> None:
    for ex in load_bank():
        assert contradictions(five_element_from_data(ex.model), ex.request) == [], ex.id


def test_with_grounding_repair_the_swapped_bakery_goes_back_and_the_fix_is_taken() -> None:
    swapped = bakery(
        [
            {
                "name": "oven",
                "expression": "3 * croissants + 5 * baguettes <= 60",
                "description": OVEN,
            },
            {"name": "butter", "expression": "50 * croissants <= 4000", "description": BUTTER},
            {"name": "sales", "expression": "baguettes <= 480", "description": SALES},
        ]
    )
    client = scripted(swapped, RIGHT_BAKERY)
    answer = agent_with(client).solve(Request(BAKERY, kind="milp", extra={"grounding": "repair"}))
    assert [a.outcome for a in answer.trace] == ["grounding", "ok"]
    second = client.chat_model.calls[1][-1]["content"]
    assert 'write "3 * croissants + 5 * baguettes <= 480"' in second
    assert 'write "baguettes <= 60"' in second
    assert answer.objective == pytest.approx(192)
    assert answer.grounding is not None and answer.grounding["contradicted"] == []


def test_an_infeasible_model_written_against_its_words_gets_both_in_its_feedback() -> None:
    """ "at most $200" written as a lower limit made a real model's coconut item infeasible; the
    repair is told about the infeasibility and the direction."""
    text = (
        "A seller ships with rickshaws and carts. A rickshaw takes 50 coconuts and costs $10 a "
        "trip; a cart takes 30 coconuts and costs $8 a trip. The seller has at most $200 to spend. "
        "Maximize the coconuts shipped."
    )
    wrong = {
        "variables": [{"name": "rickshaws"}, {"name": "carts"}],
        "objective": {"sense": "maximize", "expression": "50 * rickshaws + 30 * carts"},
        "constraints": [
            {"name": "budget", "expression": "10 * rickshaws + 8 * carts <= 200"},
            {"name": "trips", "expression": "rickshaws + carts >= 200"},
        ],
    }
    right = {**wrong, "constraints": wrong["constraints"][:1]}
    client = scripted(wrong, right)
    answer = agent_with(client).solve(Request(text, kind="milp", extra={"grounding": "repair"}))
    assert answer.trace[0].outcome != "ok" and answer.objective == pytest.approx(1000)
    second = client.chat_model.calls[1][-1]["content"]
    assert 'write "rickshaws + carts <= 200"' in second
    assert "infeasib" in second.lower()


# -- amend: the check's own edits, tried before the model is asked again --------------------------

SWAPPED = bakery(
    [
        {
            "name": "oven",
            "expression": "3 * croissants + 5 * baguettes <= oven_limit",
            "description": OVEN,
        },
        {"name": "butter", "expression": "50 * croissants <= butter_limit", "description": BUTTER},
        {
            "name": "sales",
            "expression": "croissants + baguettes <= sales_limit",
            "description": SALES,
        },
    ],
    oven_limit=60,
    butter_limit=4,
    sales_limit=480,
)


def test_amended_sets_the_swapped_limits_back_converts_the_unit_and_grounds() -> None:
    model = five_element_from_data(SWAPPED)
    out = amended(model, check(model, BAKERY))
    assert out is not None
    edited, edits = out
    assert {e.text() for e in edits} == {
        "set the parameter oven_limit to 480",
        "set the parameter butter_limit to 4000",
        'write "baguettes <= sales_limit"',
        "set the parameter sales_limit to 60",
    }
    assert check(edited, BAKERY).ok
    assert [c.expression for c in edited.constraints][2] == "baguettes <= sales_limit"


def test_amended_gives_nothing_for_a_grounded_model_or_edits_that_disagree() -> None:
    right = five_element_from_data(RIGHT_BAKERY)
    assert amended(right, check(right, BAKERY)) is None
    model = five_element_from_data(SWAPPED)
    g = check(model, BAKERY)
    clash = Contradiction("x", "y", "", (Edit("parameter", "oven_limit", 7.0),))
    assert amended(model, dataclasses.replace(g, contradicted=(*g.contradicted, clash))) is None


def test_a_rate_is_not_offered_as_a_limit() -> None:
    """A real model's lumber item: the gasoline and carbon sentence described over the 450-acre
    limit. The 7 it leaves out is gasoline per acre, a rate: named, with no edit to make."""
    text = (
        "A lumber company can use at most 450 acres of land. A small truck produces 12 units of "
        "carbon dioxide and requires 7 units of gasoline per acre. A large truck produces 25 "
        "units of carbon dioxide and requires 12 units of gasoline per acre. The company has 3200 "
        "units of gasoline and may emit 5200 units of carbon dioxide. Maximize wood."
    )
    data = {
        "parameters": [{"name": "c2_limit", "value": 450}],
        "variables": [{"name": "small_trucks"}, {"name": "large_trucks"}],
        "objective": {"sense": "maximize", "expression": "3 * small_trucks + 7 * large_trucks"},
        "constraints": [
            {
                "name": "c2",
                "expression": "small_trucks * 12 + large_trucks * 25 <= c2_limit",
                "description": "A small truck produces 12 units of carbon dioxide and requires 7 "
                "units of gasoline per acre.",
            }
        ],
    }
    [c] = contradictions(five_element_from_data(data), text)
    assert c.edits == () and "set the parameter" not in c.fix


def test_negation_further_back_turns_a_comparison_round() -> None:
    assert stated_direction("Fill a bag; nothing weighs more than 1000 kg", "1000") == UPPER
    assert stated_direction("No box may hold less than 5 kg", "5") == LOWER
    assert stated_direction("it holds no more than 50 kg", "50") == UPPER


def test_by_default_the_swapped_bakery_is_amended_without_asking_the_model_again() -> None:
    client = scripted(SWAPPED)
    answer = agent_with(client).solve(Request(BAKERY, kind="milp"))
    assert answer.objective == pytest.approx(192) and answer.verified
    assert len(client.chat_model.calls) == 1
    first, second = answer.trace
    assert first.outcome == "grounding" and first.model_id != AMENDED_BY
    assert second.model_id == AMENDED_BY and second.outcome == "ok"
    assert second.edits is not None and "set the parameter sales_limit to 60" in second.edits
    assert second.to_json()["edits"] == second.edits
    assert answer.grounding is not None and answer.grounding["ok"]
    assert "Amended by formalist, not by the model (attempt 1's model" in answer.explanation


def test_amend_turns_an_infeasible_limit_round_and_solves() -> None:
    text = (
        "A seller ships with rickshaws and carts. A rickshaw takes 50 coconuts and costs $10 a "
        "trip; a cart takes 30 coconuts and costs $8 a trip. The seller has at most $200 to spend. "
        "At least 3 trips must be by cart. Maximize the coconuts shipped."
    )
    wrong = {
        "variables": [{"name": "rickshaws"}, {"name": "carts"}],
        "objective": {"sense": "maximize", "expression": "50 * rickshaws + 30 * carts"},
        "constraints": [
            {"name": "budget", "expression": "10 * rickshaws + 8 * carts >= 200"},
            {"name": "cart_trips", "expression": "carts >= 3"},
            {"name": "none", "expression": "rickshaws + carts <= 2"},
        ],
    }
    client = scripted(wrong)
    answer = agent_with(client, max_attempts=1).solve(Request(text, kind="milp"))
    assert [a.status for a in answer.trace] == ["INFEASIBLE", "INFEASIBLE"]
    assert answer.trace[1].edits == ['write "10 * rickshaws + 8 * carts <= 200"']
    assert answer.status.value == "INFEASIBLE"  # the edit did not give a solution: not taken


def test_under_grounding_repair_only_the_model_edits() -> None:
    client = scripted(SWAPPED, RIGHT_BAKERY)
    answer = agent_with(client).solve(Request(BAKERY, kind="milp", extra={"grounding": "repair"}))
    assert len(client.chat_model.calls) == 2 and answer.objective == pytest.approx(192)
    assert all(a.model_id != AMENDED_BY for a in answer.trace)


def test_a_constraint_or_objective_with_no_variable_is_named() -> None:
    """A real reply on the meal-prep item: every name of the protein constraint and of the
    objective is a parameter (weights of 1 named ``intake_*``), so they decide nothing."""
    data = meals("intake_salmon * protein_salmon + intake_bison * protein_bison >= need")
    data["parameters"] = [
        {"name": "intake_salmon", "value": 1},
        {"name": "intake_bison", "value": 1},
        {"name": "protein_salmon", "value": 15},
        {"name": "protein_bison", "value": 30},
        {"name": "need", "value": 160},
    ]
    data["objective"]["expression"] = "intake_salmon * 8 + intake_bison * 13"
    cs = contradictions(five_element_from_data(data), MEALS)
    assert [c.where for c in cs] == ['constraint "protein"', "the objective"]
    assert all("no decision variable" in c.what and not c.edits for c in cs)
    assert not check(five_element_from_data(data), MEALS).ok


def test_an_edit_that_would_drop_a_number_the_model_used_is_not_made() -> None:
    """A real reply on the refrigerator item described its kWh constraint with the items'
    sentence; setting its limit to 1500 would leave no energy limit, a model the checks can no
    longer fault. Amend gives nothing; the contradiction is still reported. (With the items'
    constraint also in the model, the description is only loose: see the next test.)"""
    text = (
        "Refrigerator A stores 120 items and uses 3 kWh; refrigerator B stores 80 items and uses "
        "1 kWh. The store is limited to at most 55 kWh. It must store at least 1500 items. "
        "Minimize the number of refrigerators."
    )
    data = {
        "parameters": [{"name": "kwh", "value": 55}, {"name": "items", "value": 1500}],
        "variables": [{"name": "a", "domain": "integer"}, {"name": "b", "domain": "integer"}],
        "objective": {"sense": "minimize", "expression": "a + b"},
        "constraints": [
            {
                "name": "energy",
                "expression": "3 * a + b <= kwh",
                "description": "It must store at least 1500 items.",
            },
        ],
    }
    model = five_element_from_data(data)
    g = check(model, text)
    assert any(e.value == 1500 for c in g.contradicted for e in c.edits)
    assert amended(model, g) is None


def test_a_description_quoting_a_sentence_another_constraint_holds_is_only_loose() -> None:
    """The refrigerator model right in every constraint, its energy limit described with the
    items' sentence that the other constraint uses and quotes: no contradiction (the other
    constraint not quoting it, there is one: a number can sit in the wrong constraint). Nor when
    one sentence
    holds both limits ("250 collective minutes ... and 1375 ounces of meat", the description
    cut short before the second)."""
    text = (
        "Refrigerator A stores 120 items and uses 3 kWh; refrigerator B stores 80 items and uses "
        "1 kWh. The store is limited to at most 55 kWh. It must store at least 1500 items. "
        "Minimize the number of refrigerators."
    )
    data = {
        "variables": [{"name": "a", "domain": "integer"}, {"name": "b", "domain": "integer"}],
        "objective": {"sense": "minimize", "expression": "a + b"},
        "constraints": [
            {
                "name": "store",
                "expression": "120 * a + 80 * b >= 1500",
                "description": "It must store at least 1500 items.",
            },
            {
                "name": "energy",
                "expression": "3 * a + b <= 55",
                "description": "The store must store at least 1500 items.",
            },
        ],
    }
    assert contradictions(five_element_from_data(data), text) == []
    del data["constraints"][0]["description"]
    [c] = contradictions(five_element_from_data(data), text)
    assert c.where == 'constraint "energy"'
    butcher = (
        "Each portion of wild boar requires 3 minutes of preparation and 6 ounces of meat. A "
        "portion of lamb chops requires 1 minute of preparation and 7 ounces of meat. The butcher "
        "only has 250 minutes every week and only 1375 ounces of meat. A boar portion earns $6 and "
        "a lamb portion $4. Maximize the earnings."
    )
    meat = {
        "variables": [{"name": "boar"}, {"name": "lamb"}],
        "objective": {"sense": "maximize", "expression": "6 * boar + 4 * lamb"},
        "constraints": [
            {"name": "time", "expression": "3 * boar + 1 * lamb <= 250"},
            {
                "name": "meat",
                "expression": "6 * boar + 7 * lamb <= 1375",
                "description": "The butcher only has 250 minutes every week",
            },
        ],
    }
    assert contradictions(five_element_from_data(meat), butcher) == []


INLINE_BAKERY = {
    # The real model's inline reply to the README's bakery: right but for the baguette's oven time.
    "variables": [{"name": "croissants"}, {"name": "baguettes"}],
    "objective": {"sense": "maximize", "expression": "1.2 * croissants + 2 * baguettes"},
    "constraints": [
        {"name": "c1_time", "expression": "3 * croissants <= 480", "description": OVEN},
        {"name": "c2_butter", "expression": "50 * croissants <= 4000"},
        {"name": "c3_baguettes", "expression": "baguettes <= 60"},
    ],
}

ADS = (
    "A company advertises with magazine ads, flyers and billboard ads, and has $50000 to spend. A "
    "magazine ad costs $1000 and attracts 10000 viewers. A flyer costs $200 and attracts 5000 "
    "viewers. A billboard ad costs $7000 and attracts 40000 viewers. Maximize the viewers."
)


def ads(budget: str, objective: str) -> dict[str, Any]:
    return {
        "variables": [{"name": "magazine_ads"}, {"name": "flyers"}, {"name": "billboard_ads"}],
        "objective": {"sense": "maximize", "expression": objective},
        "constraints": [{"name": "budget", "expression": budget}],
    }


def test_a_per_unit_number_left_out_of_its_constraint_is_added_back() -> None:
    found = contradictions(five_element_from_data(INLINE_BAKERY), BAKERY)
    assert [c.edits for c in found] == [
        (Edit("constraint", "c1_time", "3 * croissants + 5 * baguettes <= 480"),)
    ]
    assert "leaves out 5" in found[0].what and "baguettes has no term" in found[0].what
    client = scripted(INLINE_BAKERY)
    answer = agent_with(client).solve(Request(BAKERY, kind="milp"))
    assert answer.objective == pytest.approx(192) and answer.verified
    assert len(client.chat_model.calls) == 1
    assert answer.trace[-1].edits == ['write "3 * croissants + 5 * baguettes <= 480"']


def test_a_term_left_out_of_the_objective_or_of_a_sentence_per_variable_is_added_back() -> None:
    full_budget = "1000 * magazine_ads + 200 * flyers + 7000 * billboard_ads <= 50000"
    full_objective = "10000 * magazine_ads + 5000 * flyers + 40000 * billboard_ads"
    model = five_element_from_data(
        ads("200 * flyers + 7000 * billboard_ads <= 50000", full_objective)
    )
    edited = amended(model, check(model, ADS))
    appended = "200 * flyers + 7000 * billboard_ads + 1000 * magazine_ads <= 50000"
    assert edited is not None and edited[1] == [Edit("constraint", "budget", appended)]
    model = five_element_from_data(ads(full_budget, "10000 * magazine_ads + 40000 * billboard_ads"))
    edited = amended(model, check(model, ADS))
    assert edited is not None
    assert edited[1] == [
        Edit("objective", "", "10000 * magazine_ads + 40000 * billboard_ads + 5000 * flyers")
    ]
    assert edited[0].objective.expression.endswith("+ 5000 * flyers")
    assert edited[1][0].text().startswith('write the objective "')


def test_no_term_is_added_where_the_number_is_a_limit_used_elsewhere_or_its_owner_unclear() -> None:
    # A limit ("at most 60") is not a per-unit number.
    no_sales = {**INLINE_BAKERY, "constraints": INLINE_BAKERY["constraints"][:2]}
    no_sales["constraints"] = [
        {"name": "c1_time", "expression": "3 * croissants + 5 * baguettes <= 480"},
        {"name": "c2_butter", "expression": "50 * croissants <= 4000"},
    ]
    assert contradictions(five_element_from_data(no_sales), BAKERY) == []
    # The left-out number is used elsewhere: nothing is missing.
    elsewhere = {
        **INLINE_BAKERY,
        "constraints": [
            *INLINE_BAKERY["constraints"],
            {"name": "x", "expression": "baguettes >= 5"},
        ],
    }
    assert contradictions(five_element_from_data(elsewhere), BAKERY) == []
    # Two variables named alike before the number: whose it is, is not clear.
    text = "Red ads and blue ads run. An ad costs $50 and an ad costs $20; the budget is $400."
    model = {
        "variables": [{"name": "red_ads"}, {"name": "blue_ads"}],
        "objective": {"sense": "maximize", "expression": "red_ads + blue_ads"},
        "constraints": [{"name": "b", "expression": "50 * red_ads <= 400"}],
    }
    assert contradictions(five_element_from_data(model), text) == []


def test_no_bank_model_loses_a_term_to_the_reading_and_dropped_terms_come_back() -> None:
    """Each term ``N * var`` of a bank model's constraints dropped in turn: an amend that follows
    gives the bank's own optimum back, never another model."""
    import json
    import re

    from formalizers.milp.formalizer import inline_numbers
    from formalizers.milp.linear import compile_model
    from solvers import highs

    recovered = 0
    for example in load_bank()[::3]:
        data = inline_numbers(example.model)
        gold = highs.solve(compile_model(five_element_from_data(data))).objective
        for k, c in enumerate(data["constraints"]):
            for m in re.finditer(
                r"(?<![\w.])(\+ )?\d+(?:\.\d+)? \* [a-z_]\w*( \+ )?", c["expression"]
            ):
                if not (m.group(1) or m.group(2)):
                    continue
                cut = json.loads(json.dumps(data))
                cut["constraints"][k]["expression"] = " ".join(
                    (c["expression"][: m.start()] + c["expression"][m.end() :]).split()
                )
                try:
                    model = five_element_from_data(cut)
                    compile_model(model)
                except ValueError:
                    continue
                edited = amended(model, check(model, example.request))
                if edited is None:
                    continue
                assert highs.solve(compile_model(edited[0])).objective == pytest.approx(gold)
                recovered += 1
    assert recovered >= 20


PAINT = (
    "A house painting company can transport their paint in large cans or small cans. Large cans "
    "can hold 6 litres of paint while small cans can hold 2 litres of paint. Since small cans can "
    "be used up quickly and thus, not dry up as easily, the company wants to have at most 30% of "
    "the cans be large cans. However, there has to be at least 20 large cans especially for the "
    "basic colours. If the company needs to transport at least 120 litres of paint, how many of "
    "each size of cans should be transported to minimize the total number of cans?"
)


def paint(litres: str, share: str) -> dict[str, Any]:
    # The real model's inline reply to this NL4Opt dev item, both limits turned round.
    return {
        "variables": [{"name": "large"}, {"name": "small"}],
        "objective": {"sense": "minimize", "expression": "large + small"},
        "constraints": [
            {"name": "c1_linear", "expression": litres},
            {"name": "c2_linear", "expression": share},
            {"name": "c3_linear", "expression": "large >= 20"},
        ],
    }


def test_a_share_written_the_other_way_round_is_turned_round() -> None:
    wrong = five_element_from_data(
        paint("6 * large + 2 * small <= 120", "large >= 0.3 * (large + small)")
    )
    found = {c.where: c for c in contradictions(wrong, PAINT)}
    share = found['constraint "c2_linear"']
    assert "0.3 of the total a lower limit" in share.what and "at most 30%" in share.what
    assert share.edits == (Edit("constraint", "c2_linear", "large <= 0.3 * (large + small)"),)
    edited = amended(wrong, check(wrong, PAINT))
    assert edited is not None and len(edited[1]) == 2
    result = agent_with(
        scripted(paint("6 * large + 2 * small <= 120", "large >= 0.3 * (large + small)"))
    )
    got = result.solve(Request(PAINT, kind="milp"))
    assert got.objective == pytest.approx(200 / 3) and got.verified
    assert got.grounding is not None and got.grounding["ok"]
    # The share on the left reads the same; the right way round is no contradiction.
    assert (
        contradictions(
            five_element_from_data(
                paint("6 * large + 2 * small >= 120", "0.3 * (large + small) >= large")
            ),
            PAINT,
        )
        == []
    )


def test_a_share_whose_words_give_no_direction_is_not_judged() -> None:
    text = PAINT.replace("at most 30% of the cans be large cans", "30% of the cans be large cans")
    model = five_element_from_data(
        paint("6 * large + 2 * small >= 120", "large >= 0.3 * (large + small)")
    )
    assert contradictions(model, text) == []


def test_what_is_left_of_a_share_is_set_to_the_share_of_the_subject_the_words_name() -> None:
    """The real model's inline reply to a meal item: "at most 25% of the meals should be salmon
    lunch" as ``salmon <= 0.75 * total``. Where the words name the other variable, the rest is
    right (``bison >= 0.75 * total``) and nothing is said."""
    text = MEALS.replace(
        "How many", "At most 25% of the meals should be salmon lunch. How many"
    ).replace("salmon lunch and a bison burger", "salmon lunch and a bison burger")

    def meals(share: str) -> dict[str, Any]:
        return {
            "variables": [{"name": "salmon_lunch"}, {"name": "bison_burger"}],
            "objective": {
                "sense": "minimize",
                "expression": "8 * salmon_lunch + 13 * bison_burger",
            },
            "constraints": [
                {"name": "protein", "expression": "15 * salmon_lunch + 30 * bison_burger >= 160"},
                {"name": "share", "expression": share},
            ],
        }

    wrong = five_element_from_data(meals("salmon_lunch <= 0.75 * (salmon_lunch + bison_burger)"))
    edited = amended(wrong, check(wrong, text))
    assert edited is not None
    assert edited[1] == [
        Edit("constraint", "share", "salmon_lunch <= 0.25 * (salmon_lunch + bison_burger)")
    ]
    # Both wrong at once: the rest of the share, and the direction.
    both = five_element_from_data(meals("salmon_lunch >= 0.75 * (salmon_lunch + bison_burger)"))
    edited = amended(both, check(both, text))
    assert edited is not None
    assert edited[1] == [
        Edit("constraint", "share", "salmon_lunch <= 0.25 * (salmon_lunch + bison_burger)")
    ]
    right = five_element_from_data(meals("bison_burger >= 0.75 * (salmon_lunch + bison_burger)"))
    assert contradictions(right, text) == []


SHAKES = (
    "An athlete drinks chocolate powder or vanilla powder shakes. Each scoop of chocolate powder "
    "protein shake contains 20 grams of protein and 4 grams of sugar. Each scoop of vanilla powder "
    "protein shake contains 18 grams of protein and 7 grams of sugar. Since she prefers the "
    "vanilla flavour, she would like to drink at least twice as many vanilla powder shakes as "
    "chocolate powder shakes. She must also drink at least 2 scoops of the chocolate powder "
    "shake. She is limiting her consumption to at most 500 grams of sugar. Maximize her protein."
)


def shakes(multiple: str) -> dict[str, Any]:
    # The real model's inline reply to this NL4Opt dev item, its sugar constraint set right.
    return {
        "variables": [
            {"name": "chocolate_powder", "domain": "integer"},
            {"name": "vanilla_powder", "domain": "integer"},
        ],
        "objective": {
            "sense": "maximize",
            "expression": "20 * chocolate_powder + 18 * vanilla_powder",
        },
        "constraints": [
            {"name": "c1_linear", "expression": multiple},
            {"name": "c2_linear", "expression": "chocolate_powder >= 2"},
            {"name": "c3_linear", "expression": "4 * chocolate_powder + 7 * vanilla_powder <= 500"},
        ],
    }


@pytest.mark.parametrize(
    "wrong",
    ["2 * vanilla_powder >= chocolate_powder", "chocolate_powder >= 2 * vanilla_powder"],
)
def test_a_multiple_written_the_wrong_way_round_is_rewritten(wrong: str) -> None:
    model = five_element_from_data(shakes(wrong))
    found = [c for c in contradictions(model, SHAKES) if c.where == 'constraint "c1_linear"']
    assert [c.edits for c in found] == [
        (Edit("constraint", "c1_linear", "vanilla_powder >= 2 * chocolate_powder"),)
    ]
    assert "twice as many vanilla powder shakes as chocolate powder shakes" in found[0].what
    answer = agent_with(scripted(shakes(wrong)), max_attempts=1).solve(Request(SHAKES, kind="milp"))
    assert answer.verified and answer.objective == pytest.approx(1548)


def test_a_multiple_right_or_without_a_direction_is_not_judged() -> None:
    right = five_element_from_data(shakes("vanilla_powder >= 2 * chocolate_powder"))
    assert contradictions(right, SHAKES) == []
    also_right = five_element_from_data(shakes("vanilla_powder - 2 * chocolate_powder >= 0"))
    assert contradictions(also_right, SHAKES) == []
    plain = SHAKES.replace("at least twice as many", "twice as many")
    assert (
        contradictions(
            five_element_from_data(shakes("2 * vanilla_powder >= chocolate_powder")), plain
        )
        == []
    )


INVEST = (
    "A financial manager is planning to allocate a total investment of \\$10,000,000 across four "
    "projects: X, Y, Z and W. The projects have expected returns per dollar invested of 5%, 7%, 6% "
    "and 8% respectively.\\n\\nThe following constraints are placed on the allocation:\\n- Project "
    "X requires a minimum investment of \\$2,000,000.\\n- Project W can only handle up to "
    "\\$3,000,000 in funding.\\n\\nWhat is the minimum total return from these investments that "
    "can be achieved while meeting all these constraints?"
)


def invest(sense: str, expression: str = "0.05 * x + 0.07 * y + 0.06 * z + 0.08 * w") -> Any:
    """A real Mamo EasyLP reply (2026-12-07, 7 of its 8 samples): "the minimum total return"
    written ``maximize``, the total kept as an equality."""
    return {
        "variables": [{"name": v, "domain": "integer"} for v in "xyzw"],
        "objective": {"sense": sense, "expression": expression},
        "constraints": [
            {"name": "total", "expression": "x + y + z + w == 10000000"},
            {"name": "x_min", "expression": "x >= 2000000"},
            {"name": "w_max", "expression": "w <= 3000000"},
        ],
    }


@pytest.mark.parametrize(
    ("request_text", "sense"),
    [
        (INVEST, "minimize"),  # the question, its escaped newlines read as spaces
        ("Each unit brings $10. The manager aims to maximize profits.", "maximize"),
        ("Find the best combination of monitors that yields the highest profit.", "maximize"),
        ("How many of each pipe should be used to reduce the total number of pipes?", "minimize"),
        # Limit phrases in the question are not its sense.
        (
            "What is the least cost if at most 5 trucks and a maximum of 30 vans are used?",
            "minimize",
        ),
        ("Moreover, the maximum capacity is 700 units. What is the minimum cost?", "minimize"),
    ],
)
def test_the_sense_a_request_asks_for(request_text: str, sense: str) -> None:
    found = asked_sense(request_text)
    assert found is not None and found[0] == sense


@pytest.mark.parametrize(
    "request_text",
    [
        "The firm wants to maximize efficiency while minimizing cost.",  # both: not judged
        "What is the optimal total cost of the plan?",  # neither
        "The capacity is at most 40 and demand at least 10. Plan the shifts.",  # limits only
    ],
)
def test_no_sense_where_the_request_names_both_or_neither(request_text: str) -> None:
    assert asked_sense(request_text) is None


def test_an_objective_of_the_other_sense_is_turned_round() -> None:
    [c] = contradictions(five_element_from_data(invest("maximize")), INVEST)
    assert c.where == "the objective" and "asks to minimize" in c.what
    assert c.edits == (Edit("sense", "", "minimize"),) and c.fix == "make it minimize"
    assert c.edits[0].text() == "make the objective minimize"
    assert contradictions(five_element_from_data(invest("minimize")), INVEST) == []
    # A negated objective maximizes by minimizing: not judged.
    negated = invest("maximize", "-0.05 * x - 0.07 * y - 0.06 * z - 0.08 * w")
    assert contradictions(five_element_from_data(negated), INVEST) == []


def test_the_agent_turns_the_sense_round_itself() -> None:
    client = scripted(invest("maximize"))
    answer = agent_with(client, max_attempts=1).solve(Request(INVEST, kind="milp"))
    # The least return puts all of it at 5% (y, z and w have no lower limits here): 500,000.
    assert answer.verified and answer.objective == pytest.approx(500_000)
    assert answer.trace[-1].model_id == AMENDED_BY
    assert answer.trace[-1].edits == ["make the objective minimize"]


SHIFTS = (
    "A manager is scheduling shifts for two types of workers: type $X$ and type $Y$. The total "
    "number of shifts that must be scheduled is at least 10 to ensure all tasks are covered. To "
    "maintain a balanced workload, the number of shifts for type X workers should not exceed twice "
    "the number of shifts for type Y workers by more than 4.\\n\\nEach shift for a worker of type "
    "$X$ costs \\$8 in wages, while each shift for a worker of type $Y$ costs \\$5. The manager "
    "aims to minimize the total wage cost."
)


def shifts(total: str, balance: str = "X <= 2 * Y + 4") -> dict[str, Any]:
    """A real Mamo EasyLP reply (2026-12-07), greedy: the total of shifts bounded on X alone."""
    return {
        "variables": [
            {"name": "X", "domain": "integer", "description": "number of shifts for type X"},
            {"name": "Y", "domain": "integer", "description": "number of shifts for type Y"},
        ],
        "objective": {"sense": "minimize", "expression": "8 * X + 5 * Y"},
        "constraints": [
            {"name": "total", "expression": total},
            {"name": "balance", "expression": balance},
        ],
    }


def test_a_total_bounded_on_one_of_its_parts_bounds_their_sum() -> None:
    [c] = contradictions(five_element_from_data(shifts("X >= 10")), SHIFTS)
    assert c.where == 'constraint "total"' and "bounds X alone by 10" in c.what
    assert c.edits == (Edit("constraint", "total", "(X + Y) >= 10"),)
    assert contradictions(five_element_from_data(shifts("X + Y >= 10")), SHIFTS) == []
    # The agent makes the edit: 10 shifts of Y at $5.
    answer = agent_with(scripted(shifts("X >= 10")), max_attempts=1).solve(
        Request(SHIFTS, kind="milp")
    )
    assert answer.verified and answer.objective == pytest.approx(50)


@pytest.mark.parametrize(
    ("request_text", "variables", "constraint"),
    [
        # The sentence singles one part out, by a word, a letter or a number.
        (
            "The contract needs at least 50 workers, of whom at least 10 must be engineers.",
            [("designers", "UI designers"), ("engineers", "software engineers")],
            "engineers >= 10",
        ),
        (
            "There must be at least 5 truck A's in total and 8 truck B's.",
            [("truck_a", "truck A"), ("truck_b", "truck B")],
            "truck_a >= 5",
        ),
        (
            "In total, Project X1 may get up to 400 units.",
            [("x1", "units for project X1"), ("x2", "units for project X2")],
            "x1 <= 400",
        ),
        # A real NL4Opt reply (2026-12-07): the number in digits, the name in words.
        (
            "In order to stay in business, at least 40 2-piece suites should be made.",
            [("two_piece", "2-piece suits"), ("three_piece", "3-piece suits")],
            "two_piece >= 40",
        ),
        # A limit the other way from its words is another reading's, not this one's.
        (
            "The total number of shifts is at least 10.",
            [("x", "shifts of type x"), ("y", "shifts of type y")],
            "x <= 10",
        ),
    ],
)
def test_a_part_the_sentence_names_is_not_read_as_the_total(
    request_text: str, variables: list[tuple[str, str]], constraint: str
) -> None:
    data = {
        "variables": [{"name": n, "description": d} for n, d in variables],
        "objective": {"sense": "minimize", "expression": " + ".join(n for n, _ in variables)},
        "constraints": [{"name": "c", "expression": constraint}],
    }
    found = contradictions(five_element_from_data(data), request_text)
    assert not [c for c in found if "alone by" in c.what]


def test_a_margin_not_to_exceed_is_an_upper_limit() -> None:
    """ "should not exceed twice Y by more than 4": the negation is the verb's, far before."""
    sentence = sentences(SHIFTS)[2]
    assert stated_direction(sentence, "4") == UPPER
    assert stated_direction("Type X must exceed type Y by more than 4.", "4") == LOWER
    assert (
        contradictions(five_element_from_data(shifts("X + Y >= 10", "X - 2 * Y <= 4")), SHIFTS)
        == []
    )


# -- integrality: an amount measured in a unit is not a count --------------------------------------

RICE = (
    "A factory produces rice and corn. To make one kilogram of rice requires 2 hours of human "
    "labor and to make one kilogram of corn requires 1 hour. The factory has 100 hours of human "
    "labor available. The net profit per kilogram of rice is $20 and per kilogram of corn $25. "
    "How many kilograms of each should the factory make in order to maximize profit?"
)


def rice(domain: str = "integer", corn: str = "corn") -> dict[str, Any]:
    return {
        "variables": [
            {"name": "rice", "domain": domain},
            {"name": corn, "domain": domain},
        ],
        "objective": {"sense": "maximize", "expression": f"20 * rice + 25 * {corn}"},
        "constraints": [{"name": "labor", "expression": f"2 * rice + {corn} <= 100"}],
    }


def test_an_amount_measured_in_kilograms_is_not_a_count() -> None:
    """A real NL4Opt reply (2026-12-07): all 8 samples made rice and corn integer."""
    found_ = contradictions(five_element_from_data(rice()), RICE)
    assert [c.where for c in found_] == ["variable 'rice'", "variable 'corn'"]
    assert "measures it in kilogram" in found_[0].what
    assert found_[0].edits == (Edit("domain", "rice", "continuous"),)
    assert contradictions(five_element_from_data(rice("continuous")), RICE) == []
    # A count of containers of it is a count: "bags_of_corn" is not read by "kilogram of corn".
    assert [
        c.where for c in contradictions(five_element_from_data(rice(corn="bags_of_corn")), RICE)
    ] == ["variable 'rice'"]
    # A request that speaks of whole numbers decides integrality itself.
    whole = RICE.replace("make in order", "make, in whole kilograms, in order")
    assert contradictions(five_element_from_data(rice()), whole) == []


def test_the_amend_makes_it_continuous_and_the_answer_follows() -> None:
    model = five_element_from_data(rice())
    out = amended(model, check(model, RICE))
    assert out is not None
    edited, edits = out
    assert {e.text() for e in edits} == {"make rice continuous", "make corn continuous"}
    assert {v.domain for v in edited.variables} == {"continuous"}
    assert check(edited, RICE).ok


def test_no_bank_variable_counted_whole_is_read_as_an_amount() -> None:
    """Every bank model with all its variables made integer: only those the bank keeps
    continuous (amounts: kilograms, tons, acres) are read, never one it counts whole."""
    read = 0
    for ex in load_bank():
        data = ex.model
        variables = [{**v, "domain": "integer"} for v in data["variables"]]
        found_ = contradictions(
            five_element_from_data({**data, "variables": variables}), ex.request
        )
        kept = {v["name"]: v["domain"] for v in data["variables"]}
        for c in found_:
            if c.where.startswith("variable '") and "measures it in" in c.what:
                assert kept[c.where.split("'")[1]] == "continuous", (ex.id, c.text())
                read += 1
    assert read >= 8  # rice and corn, alloys, paint, ham and bacon, strawberries and melons


DRINKS = (
    "David mixes two drinks: coconut water and blue energade. Coconut water costs $3 per bottle "
    "and contains 5 units of potassium; blue energade costs $5 per bottle and contains 10 units "
    "of potassium. He needs at least 15 units of potassium. How many bottles of each drink "
    "should he buy to ensure a minimum cost?"
)


def drinks(domain: str = "continuous", extra: str = "") -> dict[str, Any]:
    variables = [{"name": "coconut_water", "domain": domain}]
    variables.append({"name": "blue_energade", "domain": domain})
    if extra:
        variables.append({"name": extra, "domain": "continuous", "index": ["DAYS"]})
    return {
        "sets": [{"name": "DAYS", "members": [1, 2]}] if extra else [],
        "variables": variables,
        "objective": {"sense": "minimize", "expression": "3 * coconut_water + 5 * blue_energade"},
        "constraints": [
            {"name": "potassium", "expression": "5 * coconut_water + 10 * blue_energade >= 15"}
        ],
    }


def test_a_question_that_counts_bottles_of_each_makes_them_integer() -> None:
    """A real NL4Opt reply (2026-12-07): 7 of 8 samples left the bottles continuous."""
    found_ = contradictions(five_element_from_data(drinks()), DRINKS)
    assert [c.where for c in found_] == ["variable 'coconut_water'", "variable 'blue_energade'"]
    assert "counts it in whole bottles" in found_[0].what
    assert found_[0].edits == (Edit("domain", "coconut_water", "integer"),)
    assert contradictions(five_element_from_data(drinks("integer")), DRINKS) == []
    # "Of each" names no variable: with an indexed one beside, no variable is read by it.
    assert contradictions(five_element_from_data(drinks(extra="stock")), DRINKS) == []
    # Fractions allowed: the request decides.
    allowed = DRINKS + " Fractions of a bottle may be bought."
    assert contradictions(five_element_from_data(drinks()), allowed) == []
    model = five_element_from_data(drinks())
    out = amended(model, check(model, DRINKS))
    assert out is not None and {v.domain for v in out[0].variables} == {"integer"}


def test_no_bank_variable_kept_continuous_is_read_as_counted() -> None:
    """Every bank model with all its variables made continuous: only variables the bank counts
    whole are read."""
    read = set()
    for ex in load_bank():
        data = ex.model
        variables = [{**v, "domain": "continuous"} for v in data["variables"]]
        found_ = contradictions(
            five_element_from_data({**data, "variables": variables}), ex.request
        )
        kept = {v["name"]: v["domain"] for v in data["variables"]}
        for c in found_:
            if c.where.startswith("variable '") and "counts it in whole" in c.what:
                assert kept[c.where.split("'")[1]] == "integer", (ex.id, c.text())
                read.add(ex.id)
    assert len(read) >= 6


SUPPLY = (
    "A manager allocates resources x1 and x4 (x4 is a net transfer, so it may be negative). The "
    "sum x1 + x4 must be at least 50. The bounds are 0 <= x1 <= 400 and -100 <= x4 <= 300. Each "
    "unit of x1 costs 2 and each unit of x4 costs 3. Minimize the total cost."
)


def supply(x4: str, lower: float | None = 0) -> dict[str, Any]:
    """A real Mamo EasyLP reply (2026-12-07), shortened: 5 of 8 samples wrote the request's
    bound as a constraint and left x4's lower bound at the default 0."""
    return {
        "variables": [
            {"name": "x1", "domain": "integer", "upper": 400},
            {"name": "x4", "domain": "integer", "lower": lower},
        ],
        "objective": {"sense": "minimize", "expression": "2 * x1 + 3 * x4"},
        "constraints": [
            {"name": "total", "expression": "x1 + x4 >= 50"},
            {"name": "bounds_x4", "expression": x4},
        ],
    }


@pytest.mark.parametrize("x4", ["-100 <= x4 <= 300", "x4 >= -100", "-100 <= x4"])
def test_a_floor_below_zero_under_a_default_lower_bound_becomes_the_bound(x4: str) -> None:
    [c] = contradictions(five_element_from_data(supply(x4)), SUPPLY)
    assert c.where == "variable 'x4'" and "never binds" in c.what
    assert c.edits == (Edit("bounds", "x4", (-100.0, None)),)
    # Declared free or down to -100, the constraint binds: nothing to read.
    assert contradictions(five_element_from_data(supply(x4, None)), SUPPLY) == []
    assert contradictions(five_element_from_data(supply(x4, -100)), SUPPLY) == []
    # The agent makes the edit: x4 = -100 and x1 = 150 cost 0, against 100 with x4 >= 0.
    answer = agent_with(scripted(supply(x4)), max_attempts=1).solve(Request(SUPPLY, kind="milp"))
    assert answer.verified and answer.objective == pytest.approx(0)


def test_a_floor_the_request_does_not_state_is_not_read() -> None:
    found_ = contradictions(five_element_from_data(supply("x4 >= -70")), SUPPLY)
    assert not [c for c in found_ if "never binds" in c.what]
    # The invented -70 is still named, as a number the request does not state.
    assert (
        "'bounds_x4' is 70" in check(five_element_from_data(supply("x4 >= -70")), SUPPLY).feedback()
    )
