"""The repair loop, driven by scripted models: a broken artifact first, then a fixed one. One loop
for ``solve`` and ``formalize``; statuses, not error text, stop it; follow-ups belong to the kind; one
diagnostics style for every kind's schema errors."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from agent.errors import ArtifactError, ConfigError, NeedsInformation, location
from agent.kinds import KIND_NAMES, KINDS, Options
from agent.types import Request
from conftest import agent_with, golden_json, scripted
from solvers.base import SolveResult, Status

KNAPSACK = golden_json("knapsack.json")
STAFFING = golden_json("infeasible.json")


def test_invalid_json_then_valid_model() -> None:
    client = scripted('{"sets": [ {"name": "BOXES", "members": ["a"] ', KNAPSACK)
    # The knapsack's numbers are not the request's: reported, not repaired (two replies).
    answer = agent_with(client).solve(
        Request("Pack the most valuable boxes into a 15 kg bag.", extra={"grounding": "report"})
    )
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
    # Grounding reported only: the feedback is the proof alone (the staffing model's salaries
    # are not in this one-line request, which grounding repair would add).
    answer = agent_with(client).solve(
        Request(
            "Ten posts; support needs at least 6 people and sales at least 4.",
            extra={"grounding": "report"},
        )
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


# -- one loop: formalize runs it too, stopped once the artifact validates ------------------------


def test_formalize_runs_the_repair_loop_and_stops_at_validation() -> None:
    broken = copy.deepcopy(KNAPSACK)
    broken["constraints"][0]["expression"] = "sum(weight[b] * take[b] for b in BOXES) <= bag_limit"
    client = scripted("no JSON here", broken, json.dumps(broken, indent=3), KNAPSACK)
    out = agent_with(client, max_attempts=4).formalize("Pack the boxes.", kind="milp")
    assert (out["kind"], out["language"], out["attempts"]) == ("milp", "five-element", 4)
    assert out["artifact"] == KNAPSACK
    parse, symbol, repeat = out["feedback"]
    assert "no JSON object found" in parse and "'bag_limit' is not declared" in symbol
    assert "the same as attempt 2's" in repeat  # the same repeat detection as solve's


def test_formalize_raises_the_last_error_when_every_attempt_failed() -> None:
    client = scripted("no JSON", "still none")
    with pytest.raises(ArtifactError) as failed:
        agent_with(client, max_attempts=2).formalize("Pack the boxes.", kind="milp")
    assert failed.value.kind == "parse"


def test_formalize_and_solve_ask_the_same_questions() -> None:
    asks = {"questions": ["How heavy is the bag allowed to be?"]}
    answer = agent_with(scripted(asks)).solve(Request("Pack the boxes.", kind="milp"))
    assert answer.status is Status.NEEDS_INFO
    assert answer.questions == asks["questions"] and answer.trace[0].outcome == "needs_info"
    with pytest.raises(NeedsInformation) as needs:
        agent_with(scripted(asks)).formalize("Pack the boxes.", kind="milp")
    assert needs.value.questions == asks["questions"]


# -- statuses, not text, stop the loop -----------------------------------------------------------


@pytest.mark.parametrize("status", [Status.TIMEOUT, Status.ERROR, Status.UNSUPPORTED])
def test_a_status_from_our_side_stops_the_loop_without_feedback(
    status: Status, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.kinds.milp import MilpKind

    # The message reads like an artifact's fault: only the status counts.
    said = "the model is infeasible: a constraint is missing"
    monkeypatch.setattr(
        MilpKind, "solve", lambda self, v, o: SolveResult(status, "highs", message=said)
    )
    client = scripted(KNAPSACK)  # one reply: a second call would find none
    answer = agent_with(client).solve("Pack the most valuable boxes into a 15 kg bag.")
    assert answer.status is status and answer.attempts == 1
    attempt = answer.trace[0]
    assert (attempt.stage, attempt.outcome, attempt.feedback) == ("solve", status.value.lower(), "")
    assert len(client.chat_model.calls) == 1


@pytest.mark.parametrize("name", KIND_NAMES)
@pytest.mark.parametrize("status", [Status.TIMEOUT, Status.ERROR, Status.UNSUPPORTED])
def test_no_kind_dresses_our_sides_failure_as_an_artifact_error(name: str, status: Status) -> None:
    result = SolveResult(status, "solver", message="ran out of time")
    assert KINDS[name].problem(None, result, None) is None


def test_an_infeasible_proof_is_still_sent_back() -> None:
    from agent.kinds.milp import MilpKind

    result = SolveResult(Status.INFEASIBLE, "highs", message="timeout")  # text says nothing
    problem = MilpKind().problem(None, result, None)
    assert problem is not None and problem.kind == "infeasible"


# -- follow-ups belong to the kind ---------------------------------------------------------------


def test_a_follow_up_edits_the_model_where_the_kind_can() -> None:
    client = scripted(KNAPSACK)
    answer = agent_with(client).revise("Pack the boxes.", "milp", STAFFING, "make it 15 kg")
    assert answer.status is Status.OPTIMAL and answer.objective == 15.0
    first = client.chat_model.calls[0]
    assert json.loads(first[-2]["content"]) == STAFFING and "make it 15 kg" in first[-1]["content"]
    opts = Options()
    assert KINDS["asp"].revising(client, opts, {"a": 1}, "now 3 colours") is None
    assert KINDS["milp"].revising(client, opts, "Maximize\n obj: x\nEnd", "more") is None


# -- one diagnostics style for every kind --------------------------------------------------------


def _schema_error(read: Callable[[], object]) -> list[str]:
    with pytest.raises(ArtifactError) as e:
        read()
    assert e.value.kind == "schema"
    return [d.render() for d in e.value.diagnostics]


def test_the_same_schema_error_reads_the_same_in_every_kind() -> None:
    from formalizers.apis.model import read_request
    from formalizers.offline.milp_files import read_five_element
    from formalizers.routing.spec import parse_spec

    milp = copy.deepcopy(KNAPSACK)
    milp["constraints"][0]["colour"] = "red"
    del milp["constraints"][0]["expression"]
    route = {
        "locations": [{"id": "D", "x": 0, "y": 0}, {"id": "a", "x": 1, "y": 1}],
        "depots": [{"location": "D"}],
        "clients": [{"location": "a", "colour": "red"}],
        "vehicle_types": [{"count": 1}],
    }
    request = {
        "catalog": {"apis": [{"name": "a", "outputs": ["x"], "colour": "red"}]},
        "want": ["x"],
    }
    unknown = "unknown field (not part of the schema)"
    assert f"constraints[0].colour: {unknown}" in _schema_error(
        lambda: read_five_element(json.dumps(milp))
    )
    assert "constraints[0].expression: Field required" in _schema_error(
        lambda: read_five_element(json.dumps(milp))
    )
    assert f"clients[0].colour: {unknown}" in _schema_error(lambda: parse_spec(route))
    assert f"catalog.apis[0].colour: {unknown}" in _schema_error(
        lambda: read_request(json.dumps(request))
    )
    del request["catalog"]["apis"][0]["colour"], request["catalog"]["apis"][0]["outputs"]
    assert "catalog.apis[0].outputs: Field required" in _schema_error(
        lambda: read_request(json.dumps(request))
    )


def test_locations_and_whole_artifact_errors() -> None:
    assert location(("constraints", 2, "expression")) == "constraints[2].expression"
    assert location((0, "x")) == "[0].x" and location(()) == ""
    from formalizers.offline.milp_files import read_five_element

    milp = copy.deepcopy(KNAPSACK)
    milp["sets"] = 3
    assert _schema_error(lambda: read_five_element(json.dumps(milp)))[0].startswith("sets: ")


def test_a_fault_only_the_solver_finds_goes_back_to_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent.kinds.asp import AspKind
    from formalizers.asp.program import AspProgram

    # Unchecked before solving: clingo is the first to read the broken program.
    monkeypatch.setattr(AspKind, "validate", lambda self, a, o: AspProgram(a.model.text))
    client = scripted("```asp\na :- b c.\n```", "```asp\na. b :- a.\n```")
    answer = agent_with(client).solve(Request("Derive b from a.", kind="asp"))
    assert answer.status is Status.FEASIBLE and answer.verified
    first = answer.trace[0]
    assert (first.stage, first.outcome) == ("solve", "parse") and "line 1" in first.feedback
    # A person's file with the same fault is invalid input, not our side's failure.
    formal = agent_with(None).solve(Request("a :- b c.\n", "broken.lp", "asp"))
    assert formal.status is Status.ERROR and formal.error.startswith("the input is invalid (parse)")
