"""Grounding by names (issue 14): a stated number bounds a variable its sentence names."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from agent.types import Request
from conftest import agent_with, scripted
from formalizers.milp.grounding import (
    check,
    misattributions,
    name_tokens,
    sentences,
    singular,
)
from formalizers.milp.model import five_element_from_data
from formalizers.milp.retrieval import load_bank

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
BAKERY = (EXAMPLES / "bakery.txt").read_text(encoding="utf-8")
SALES = "The bakery can sell at most 60 baguettes a day"


def bakery(sales: str = "baguettes <= 60", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "variables": [
            {"name": "croissants", "domain": "integer"},
            {"name": "baguettes", "domain": "integer"},
        ],
        "objective": {"sense": "maximize", "expression": "1.2 * croissants + 2 * baguettes"},
        "constraints": [
            {"name": "oven", "expression": "3 * croissants + 5 * baguettes <= 480"},
            {"name": "butter", "expression": "50 * croissants <= 4000"},
            {"name": "oven_cap", "expression": sales},
        ],
    }
    data.update(extra)
    return data


def test_names_are_split_lowercased_and_singular() -> None:
    assert singular("baguettes") == "baguette"
    assert singular("boxes") == "box"
    assert singular("batteries") == "battery"
    assert singular("glass") == "glass"
    assert name_tokens("max_baguettes") == {"max", "baguette"}
    assert name_tokens("maxBaguettes2Day") == {"max", "baguette", "day"}
    assert name_tokens("The bakery can sell at most 60 baguettes a day.") >= {"baguette", "sell"}


def test_sentences_end_at_a_full_stop_not_at_a_decimal_point() -> None:
    parts = sentences(BAKERY)
    assert f"{SALES}." in parts
    assert "A croissant earns $1.20 and a baguette $2.00." in parts


def test_line_breaks_end_sentences_escaped_ones_too() -> None:
    """Mamo EasyLP writes its line breaks as backslash-n (469 of 642 texts): a list of bounds is
    one sentence per line, and a number right after a break is a number (it was glued to the n)."""
    text = (
        "The bounds are as follows: \\nsolar <= 3000 units,\\nwind <= 2500 units,\\n"
        "1000 <= hydro <= 4000 units.\\n\\nThe constraints:\\n- Hydro is at least 500 more "
        "than nuclear.\\n- Cost is minimal when x \\neq y. A line wrapped\nmid-sentence stays."
    )
    assert sentences(text) == [
        "The bounds are as follows:",
        "solar <= 3000 units,",
        "wind <= 2500 units,",
        "1000 <= hydro <= 4000 units.",
        "The constraints:",
        "- Hydro is at least 500 more than nuclear.",
        "- Cost is minimal when x \\neq y.",
        "A line wrapped mid-sentence stays.",
    ]
    model = {
        "variables": [{"name": v} for v in ("solar", "wind", "hydro", "nuclear")],
        "objective": {"sense": "minimize", "expression": "solar + wind + hydro + nuclear"},
        "constraints": [
            {"name": "s", "expression": "solar <= 3000"},
            {"name": "w", "expression": "wind <= 2500"},
            {"name": "h", "expression": "hydro <= 4000"},
            {"name": "n", "expression": "hydro >= nuclear + 500"},
        ],
    }
    assert [q.text for q in check(five_element_from_data(model), text).unused] == ["1000"]


def test_the_right_bakery_model_has_no_mismatch() -> None:
    g = check(five_element_from_data(bakery()), BAKERY)
    assert g.ok and g.misattributed == ()


def test_the_issues_cap_on_the_wrong_variable_is_flagged_as_a_literal() -> None:
    g = check(five_element_from_data(bakery("croissants <= 60")), BAKERY)
    # Every number is the request's: only the names tell it is wrong.
    assert not g.invented and not g.unused and not g.ok
    [m] = g.misattributed
    assert (m.where, m.variables, m.number, m.about) == (
        'constraint "oven_cap"',
        ("croissants",),
        "60",
        ("baguettes",),
    )
    assert (
        f'the constraint "oven_cap" bounds croissants with 60, but 60 comes from "{SALES}", '
        "which is about baguettes" in g.feedback()
    )
    assert g.to_json()["misattributed"] == [m.text()]
    # One renaming fixes it, and the feedback says which (a 1.5B model sent back the same model
    # twice when told only to attach the number to what its sentence is about).
    assert m.suggestion == 'write "baguettes <= 60"'
    assert 'what its sentence is about: write "baguettes <= 60"' in g.feedback()


def test_the_issues_cap_on_the_wrong_variable_is_flagged_through_its_parameter() -> None:
    data = bakery(
        "croissants <= max_baguettes", parameters=[{"name": "max_baguettes", "value": 60}]
    )
    [m] = check(five_element_from_data(data), BAKERY).misattributed
    assert m.number == "max_baguettes = 60" and m.sentence == SALES
    assert m.suggestion == 'write "baguettes <= max_baguettes"'
    # The same parameter on the right variable is the right model.
    right = bakery(
        "baguettes <= max_baguettes", parameters=[{"name": "max_baguettes", "value": 60}]
    )
    assert check(five_element_from_data(right), BAKERY).ok


def test_a_variable_bound_on_the_wrong_variable_is_flagged() -> None:
    data = bakery()
    data["constraints"].pop()
    data["variables"][0]["upper"] = 60
    [m] = check(five_element_from_data(data), BAKERY).misattributed
    assert m.text().startswith("the upper bound of croissants is 60, but 60 comes from")
    assert m.suggestion == "put the bound on baguettes, not on croissants"
    data["variables"][0]["upper"] = None
    data["variables"][1]["upper"] = 60
    assert check(five_element_from_data(data), BAKERY).ok


def test_a_parameter_named_for_the_constrained_variable_is_the_models_reading() -> None:
    data = bakery(
        "croissants <= max_croissants", parameters=[{"name": "max_croissants", "value": 60}]
    )
    assert check(five_element_from_data(data), BAKERY).misattributed == ()


def test_a_sentence_naming_both_variables_judges_neither() -> None:
    text = BAKERY.replace(f"{SALES}.", f"{SALES}, and no more croissants than that.")
    assert check(five_element_from_data(bakery("croissants <= 60")), text).misattributed == ()


def test_a_number_in_two_sentences_is_not_judged() -> None:
    text = BAKERY.replace("480 minutes", "60 minutes")
    data = bakery("croissants <= 60")
    data["constraints"][0]["expression"] = "3 * croissants + 5 * baguettes <= 60"
    assert check(five_element_from_data(data), text).misattributed == ()


def test_a_sentence_naming_no_variable_judges_nothing() -> None:
    text = BAKERY.replace(SALES, "The shop can sell at most 60 loaves a day")
    assert check(five_element_from_data(bakery("croissants <= 60")), text).misattributed == ()


def test_index_members_name_an_indexed_variable() -> None:
    def model(sales: str) -> dict[str, Any]:
        return {
            "sets": [{"name": "BREADS", "members": ["croissant", "baguette"]}],
            "parameters": [
                {"name": "minutes", "index": ["BREADS"], "values": {"croissant": 3, "baguette": 5}},
                {"name": "price", "index": ["BREADS"], "values": {"croissant": 1.2, "baguette": 2}},
            ],
            "variables": [{"name": "x", "index": ["BREADS"], "domain": "integer"}],
            "objective": {
                "sense": "maximize",
                "expression": "sum(price[b] * x[b] for b in BREADS)",
            },
            "constraints": [
                {"name": "oven", "expression": "sum(minutes[b] * x[b] for b in BREADS) <= 480"},
                {"name": "butter", "expression": "50 * x['croissant'] <= 4000"},
                {"name": "sales", "expression": sales},
            ],
        }

    [m] = check(five_element_from_data(model("x['croissant'] <= 60")), BAKERY).misattributed
    assert m.variables == ("x[croissant]",) and m.about == ("x[baguette]",)
    assert m.suggestion == ""  # not one renaming of a plain variable: no edit proposed
    assert check(five_element_from_data(model("x['baguette'] <= 60")), BAKERY).ok


def test_the_shipping_examples_right_model_has_no_mismatch() -> None:
    text = (EXAMPLES / "shipping.txt").read_text(encoding="utf-8")
    data = {
        "sets": [
            {"name": "FACTORIES", "members": ["North", "South"]},
            {"name": "CUSTOMERS", "members": [1, 2, 3]},
        ],
        "parameters": [
            {"name": "capacity", "index": ["FACTORIES"], "values": {"North": 300, "South": 200}},
            {"name": "need", "index": ["CUSTOMERS"], "values": {"1": 150, "2": 180, "3": 120}},
            {
                "name": "cost",
                "index": ["FACTORIES", "CUSTOMERS"],
                "values": {"North": {"1": 8, "2": 6, "3": 10}, "South": {"1": 9, "2": 12, "3": 5}},
            },
        ],
        "variables": [{"name": "ship", "index": ["FACTORIES", "CUSTOMERS"]}],
        "objective": {
            "sense": "minimize",
            "expression": "sum(cost[f, c] * ship[f, c] for f in FACTORIES for c in CUSTOMERS)",
        },
        "constraints": [
            {
                "name": "supply",
                "index": ["f in FACTORIES"],
                "expression": "sum(ship[f, c] for c in CUSTOMERS) <= capacity[f]",
            },
            {
                "name": "demand",
                "index": ["c in CUSTOMERS"],
                "expression": "sum(ship[f, c] for f in FACTORIES) >= need[c]",
            },
        ],
    }
    g = check(five_element_from_data(data), text)
    assert g.ok and g.misattributed == ()


def test_no_bank_model_is_flagged_against_its_own_request() -> None:
    """No false alarm on the 94 verified NL4Opt models (loaded as test_bank does)."""
    bank = load_bank()
    assert len(bank) == 94
    for ex in bank:
        assert misattributions(five_element_from_data(ex.model), ex.request) == [], ex.id


def test_a_bank_bound_moved_to_another_variable_is_flagged() -> None:
    """A bank model with its "at least 20 diabetic pills" put on the latex gloves."""
    [ex] = [e for e in load_bank() if "at least 20 diabetic pills" in e.request]
    data = copy.deepcopy(ex.model)
    [c] = [c for c in data["constraints"] if c["expression"].startswith("diabetic_pills >=")]
    c["expression"] = c["expression"].replace("diabetic_pills >=", "latex_gloves >=")
    [m] = misattributions(five_element_from_data(data), ex.request)
    assert m.variables == ("latex_gloves",) and m.about == ("diabetic_pills",)
    assert "at least 20 diabetic pills" in m.sentence


# -- through the agent ----------------------------------------------------------------------------


def test_with_grounding_repair_the_misattributed_cap_goes_back_with_its_sentence() -> None:
    client = scripted(bakery("croissants <= 60"), bakery())
    answer = agent_with(client).solve(Request(BAKERY, kind="milp", extra={"grounding": "repair"}))
    assert [a.outcome for a in answer.trace] == ["grounding", "ok"]
    second = client.chat_model.calls[1][-1]["content"]
    assert f'60 comes from "{SALES}", which is about baguettes' in second
    assert answer.objective == pytest.approx(192)  # 80 croissants, 48 baguettes
    assert answer.grounding is not None and answer.grounding["ok"]
    assert answer.grounding["misattributed"] == []


def test_reported_only_the_misattributed_cap_is_said_beside_verified() -> None:
    answer = agent_with(scripted(bakery("croissants <= 60"))).solve(
        Request(BAKERY, kind="milp", extra={"grounding": "report"})
    )
    assert answer.verified and answer.grounding is not None and not answer.grounding["ok"]
    assert "NOT grounded in the request" in answer.explanation
    assert SALES in answer.explanation


# -- a term's number on the wrong variable of its constraint ----------------------------------------


def _bank(id_: str) -> Any:
    [ex] = [e for e in load_bank() if e.id == id_]
    return ex


def fitness(vitamin: str, fiber: str) -> dict[str, Any]:
    """The NL4Opt fitness problem (bank 987782367) with its numbers written in the expressions."""
    return {
        "variables": [
            {"name": "fruits", "domain": "integer"},
            {"name": "vegetables", "domain": "integer"},
        ],
        "objective": {"sense": "minimize", "expression": "3 * fruits + 1 * vegetables"},
        "constraints": [
            {"name": "vitamin", "expression": vitamin},
            {"name": "fiber", "expression": fiber},
            {"name": "hydration", "expression": "fruits >= 2 * vegetables"},
        ],
    }


def test_a_per_unit_number_on_the_other_variable_of_its_constraint_is_flagged() -> None:
    """What the real 1.5B model wrote in 8 of 8 samples: each pack's data sentence read as one
    constraint ("A pack of fruits contains 4 units of vitamin and 7.5 units of fiber")."""
    request = _bank("987782367").request
    wrong = fitness("4 * fruits + 7.5 * vegetables >= 100", "7 * fruits + 5 * vegetables >= 120")
    found = misattributions(five_element_from_data(wrong), request)
    assert all(m.term for m in found)
    assert sorted((m.where, m.number, m.variables, m.about) for m in found) == [
        ('constraint "fiber"', "7", ("fruits",), ("vegetables",)),
        ('constraint "vitamin"', "7.5", ("vegetables",), ("fruits",)),
    ]
    said = [m.text() for m in found if m.number == "7.5"][0]
    assert said == (
        'in the constraint "vitamin", 7.5 multiplies vegetables, but 7.5 comes from "A pack of '
        'fruits contains 4 units of vitamin and 7.5 units of fiber", which is about fruits'
    )
    assert not check(five_element_from_data(wrong), request).ok
    right = fitness("4 * fruits + 7 * vegetables >= 100", "7.5 * fruits + 5 * vegetables >= 120")
    assert misattributions(five_element_from_data(right), request) == []
    assert check(five_element_from_data(right), request).ok


def test_a_share_or_a_multiple_on_the_other_variable_is_no_per_unit_number() -> None:
    request = (
        "A shop delivers by bike and by car. A bike trip costs $3 and carries 20 boxes. A car trip "
        "costs $8 and carries 50 boxes. At least 70% of the trips must be by bike, and 400 boxes "
        "must be delivered. Minimize the cost."
    )
    data: dict[str, Any] = {
        "variables": [{"name": "bike", "domain": "integer"}, {"name": "car", "domain": "integer"}],
        "objective": {"sense": "minimize", "expression": "3 * bike + 8 * car"},
        "constraints": [
            {"name": "boxes", "expression": "20 * bike + 50 * car >= 400"},
            {"name": "share", "expression": "0.3 * bike >= 0.7 * car"},
        ],
    }
    assert misattributions(five_element_from_data(data), request) == []
    # The trips' own data swapped is judged.
    data["constraints"][0]["expression"] = "50 * bike + 20 * car >= 400"
    found = misattributions(five_element_from_data(data), request)
    assert sorted((m.number, m.variables) for m in found) == [("20", ("car",)), ("50", ("bike",))]


def test_a_sentence_naming_both_variables_judges_no_term() -> None:
    """ "a gondola ... at a rate of 20 people per minute whereas a large bus ... 5 people per
    minute" names both: "bus" is ``buses`` (``singular`` gives ``buse``), "QuickAnalytics" is
    ``quickanalytics``."""
    ex = _bank("-2043853315")
    data = {
        "variables": [
            {"name": "gondolas", "domain": "integer"},
            {"name": "buses", "domain": "integer"},
        ],
        "objective": {"sense": "minimize", "expression": "gondolas + buses"},
        "constraints": [
            {"name": "c1", "expression": "20 * gondolas + 5 * buses >= 500"},
            {"name": "c2", "expression": "buses >= 10 * gondolas"},
            {"name": "c3", "expression": "gondolas <= 0.4 * (gondolas + buses)"},
        ],
    }
    assert misattributions(five_element_from_data(data), ex.request) == []
    ex = _bank("691521231")
    data = {
        "variables": [{"name": "analyzer_3000"}, {"name": "quickanalytics"}],
        "objective": {
            "sense": "minimize",
            "expression": "3.5 * analyzer_3000 + 4.5 * quickanalytics",
        },
        "constraints": [
            {"name": "water", "expression": "20 * analyzer_3000 + 40 * quickanalytics >= 1000"},
            {"name": "dirt", "expression": "30 * analyzer_3000 + 10 * quickanalytics >= 800"},
            {"name": "heat", "expression": "3.5 * analyzer_3000 + 4.5 * quickanalytics <= 1000"},
        ],
    }
    assert [m for m in misattributions(five_element_from_data(data), ex.request) if m.term] == []


def test_a_sentence_setting_two_things_side_by_side_judges_no_term() -> None:
    """ "film-based stores require 10 units ... while the electric-based stores take 15": the
    second is named in other words than ``electrical_based``, so no term of it is judged."""
    request = (
        "A photography firm opens film-based and electrical-based stores. Film-based stores "
        "require 10 units of electricity every hour while the electric-based stores take 15 units "
        "of electricity every hour. At most 200 units of electricity are available. A film-based "
        "store earns $40 and an electrical-based store earns $55. Maximize the earnings."
    )
    data: dict[str, Any] = {
        "variables": [{"name": "film_based"}, {"name": "electrical_based"}],
        "objective": {"sense": "maximize", "expression": "40 * film_based + 55 * electrical_based"},
        "constraints": [
            {"name": "power", "expression": "10 * film_based + 15 * electrical_based <= 200"}
        ],
    }
    assert [m for m in misattributions(five_element_from_data(data), request) if m.term] == []


def test_words_two_names_share_do_not_name_either() -> None:
    """ "Liquid waste requires 30 units of disinfectant and 20 units of bacteria" names
    ``liquid_waste``: "waste" is in ``solid_waste`` too (the real model's reading, 5 of 8
    samples: ``30 * liquid_waste + 20 * solid_waste <= 1500``)."""
    ex = _bank("-1384117219")
    data: dict[str, Any] = {
        "variables": [
            {"name": "liquid_waste", "domain": "integer"},
            {"name": "solid_waste", "domain": "integer"},
        ],
        "objective": {"sense": "maximize", "expression": "10 * liquid_waste + 3 * solid_waste"},
        "constraints": [
            {"name": "disinfectant", "expression": "30 * liquid_waste + 20 * solid_waste <= 1500"},
            {"name": "bacteria", "expression": "25 * liquid_waste + 15 * solid_waste <= 1000"},
            {"name": "twice", "expression": "liquid_waste >= 2 * solid_waste"},
            {"name": "storage", "expression": "solid_waste <= 10"},
        ],
    }
    found = misattributions(five_element_from_data(data), ex.request)
    assert sorted((m.number, m.variables, m.about) for m in found) == [
        ("20", ("solid_waste",), ("liquid_waste",)),
        ("25", ("liquid_waste",), ("solid_waste",)),
    ]
    data["constraints"][0]["expression"] = "30 * liquid_waste + 25 * solid_waste <= 1500"
    data["constraints"][1]["expression"] = "20 * liquid_waste + 15 * solid_waste <= 1000"
    assert misattributions(five_element_from_data(data), ex.request) == []
    assert check(five_element_from_data(data), ex.request).ok
