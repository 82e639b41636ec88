"""The repair loop, driven by scripted models: a broken artifact first, then a fixed one."""

from __future__ import annotations

import copy

import pytest

from agent.errors import ConfigError
from conftest import agent_with, golden_json, scripted
from solvers.base import Status

KNAPSACK = golden_json("knapsack.json")
STAFFING = golden_json("infeasible.json")


def test_invalid_json_then_valid_model() -> None:
    client = scripted('{"sets": [ {"name": "BOXES", "members": ["a"] ', KNAPSACK)
    answer = agent_with(client).solve("Pack the most valuable boxes into a 15 kg bag.")
    assert answer.status is Status.OPTIMAL and answer.objective == 15.0 and answer.verified
    assert [a.outcome for a in answer.trace] == ["parse", "ok"]
    assert "not valid JSON" in answer.trace[0].feedback
    # The model saw its broken reply and the feedback in the second call.
    second = client.chat_model.calls[1]
    assert second[-2]["content"].startswith('{"sets"')
    assert "not valid JSON" in second[-1]["content"]


def test_undefined_parameter_then_fixed() -> None:
    broken = copy.deepcopy(KNAPSACK)
    broken["constraints"][0]["expression"] = "sum(weight[b] * take[b] for b in BOXES) <= bag_limit"
    client = scripted(broken, KNAPSACK)
    answer = agent_with(client).solve("Pack the most valuable boxes into a 15 kg bag.")
    assert answer.status is Status.OPTIMAL and answer.objective == 15.0
    first = answer.trace[0]
    assert first.outcome == "symbol" and first.stage == "validate"
    assert "'bag_limit' is not declared" in first.feedback
    assert "constraints[0] (bag_capacity)" in first.feedback


def test_infeasible_then_corrected_after_iis_feedback() -> None:
    fixed = copy.deepcopy(STAFFING)
    fixed["parameters"][1]["values"] = {"support": 6, "sales": 4}  # the request said 4, not 5
    client = scripted(STAFFING, fixed)
    answer = agent_with(client).solve(
        "Ten posts; support needs at least 6 people and sales at least 4."
    )
    assert answer.status is Status.OPTIMAL and answer.verified
    assert answer.objective == pytest.approx(6 * 40 + 4 * 55)
    first = answer.trace[0]
    assert first.outcome == "infeasible" and first.status == "INFEASIBLE"
    named = {line.split(":")[0].lstrip("- ") for line in first.feedback.splitlines()[1:]}
    assert named == {"headcount", "team_minimum[support]", "team_minimum[sales]"}
    assert "payroll" not in first.feedback
    # The feedback quotes the words each constraint came from.
    assert "There are ten posts." in first.feedback


def test_attempts_exhausted_gives_a_clear_failure_with_the_full_trace() -> None:
    client = scripted("I think you should make 5 chairs.", "still no JSON", "{not json}")
    answer = agent_with(client, max_attempts=3).solve("Make chairs and tables for the most profit.")
    assert answer.status is Status.ERROR
    assert not answer.ok and "gave up after 3 attempt(s)" in answer.error
    assert answer.attempts == 3
    assert [a.outcome for a in answer.trace] == ["parse", "parse", "parse"]
    assert all(a.feedback for a in answer.trace)
    assert answer.trace[2].reply == "{not json}"
    data = answer.to_json(trace=True)
    assert len(data["trace"]) == 3 and data["error"].startswith("gave up")


def test_nonlinear_term_is_named_in_feedback() -> None:
    broken = copy.deepcopy(KNAPSACK)
    broken["objective"]["expression"] = "sum(value[b] * take[b] * take[b] for b in BOXES)"
    client = scripted(broken, KNAPSACK)
    answer = agent_with(client).solve("Pack the most valuable boxes into a 15 kg bag.")
    assert answer.trace[0].outcome == "nonlinear"
    assert "((value[b] * take[b]) * take[b])" in answer.trace[0].feedback
    assert answer.objective == 15.0


def test_unbounded_every_time_is_reported_with_its_diagnosis() -> None:
    unbounded = golden_json("unbounded.json")
    answer = agent_with(scripted(unbounded, unbounded), max_attempts=2).solve(
        "Make X and Y for profit."
    )
    assert answer.status is Status.UNBOUNDED
    assert answer.diagnosis is not None and answer.diagnosis.members[0]["name"] == "y"
    assert [a.outcome for a in answer.trace] == ["unbounded", "unbounded"]
    assert "runs off to +infinity" in answer.trace[0].feedback


def test_natural_language_without_a_model_says_how_to_configure() -> None:
    with pytest.raises(ConfigError, match="FORMALIST_MODEL"):
        agent_with(None).solve("Make chairs and tables for the most profit.")


def test_schema_errors_are_located() -> None:
    broken = copy.deepcopy(KNAPSACK)
    broken["variables"][0]["domain"] = "complex"
    broken["objective"]["colour"] = "red"
    answer = agent_with(scripted(broken, KNAPSACK)).solve("Pack the boxes.")
    fb = answer.trace[0].feedback
    assert answer.trace[0].outcome == "schema"
    assert "variables[0].domain" in fb and "objective.colour" in fb
