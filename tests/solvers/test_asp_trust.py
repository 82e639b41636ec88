"""ASP answers we can trust: the check of an answer set costs about one more grounding (it never
rewrites a program whose answer holds), a program with nothing to optimize is FEASIBLE, and a
program optimizing at several priority levels reports every level."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import clingo
import pytest

from agent.cli import main
from agent.types import Request
from conftest import agent_with
from solvers import clingo_backend
from solvers import clingo_worker as worker
from solvers.asp_verify import verify_asp
from solvers.base import Limits, SolveResult, Status

COLOURING = """node(1..5). edge(1,2). edge(2,3). edge(3,4). edge(4,5). edge(5,1). edge(1,3).
col(r;g;b).
1 { color(X,C) : col(C) } 1 :- node(X).
% neighbours differ
:- edge(X,Y), color(X,C), color(Y,C).
#show color/2.
"""

PROGRAMS = {
    "shown atoms": COLOURING,
    "hidden atoms": COLOURING.replace("#show color/2.", "#show red(X) : color(X,r)."),
    "shown terms and facts": "p(1..3). fact. { q(X) : p(X) } = 2.\n#show. #show (X,X) : q(X). "
    "#show fact/0.",
    "classical negation": "n(1..3). -on(X) :- n(X), not on(X). { on(X) : n(X) } 1.\n"
    "#show on/1. #show -on/1.",
}


def solve(program: str, time_s: float = 10.0) -> SolveResult:
    return clingo_backend.solve(program, Limits(time_s=time_s))


# -- the check grounds the program as it is --------------------------------------------------------


def run_verify(program: str, claim: list[str], monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The worker's verify mode in this process, its events collected."""
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(worker, "emit", events.append)
    worker.run_verify(clingo, {"program": program, "claim": claim, "deadline": time.time() + 10})
    return events


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_true_answer_is_checked_without_rewriting_the_program(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = PROGRAMS[name]
    result = solve(program)
    assert result.answer_set is not None

    def no_rewrite(*args: object) -> None:
        raise AssertionError("the program was rewritten for a true answer")

    monkeypatch.setattr(worker, "guarded_program", no_rewrite)
    events = run_verify(program, list(result.answer_set), monkeypatch)
    found = next(e for e in events if e["event"] == "result")
    assert found["outcome"] == "sat" and found["proven"] and not found["never_shown"]
    assert not [e for e in events if e["event"] == "diagnosis"]


def showable(program: str) -> set[str]:
    """Every symbol the program's ground #show statements can show."""
    ctl = clingo.Control()
    out = worker.Output()
    ctl.register_observer(out)
    ctl.add("base", [], program)
    ctl.ground([("base", [])])
    return {str(s) for s in out.table()}


def wrong_claims(answer: tuple[str, ...], program: str) -> list[list[str]]:
    """Claims that are not the answer set: one symbol dropped, one added that the program can
    show (but this answer does not), one it can never show."""
    extra = sorted(showable(program) - set(answer))
    assert extra
    return [list(answer[1:]), [*answer, extra[0]], [*answer, "never(shown)"]]


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_false_answer_names_the_claims_first_then_the_constraints(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = PROGRAMS[name]
    answer = solve(program).answer_set
    assert answer is not None
    for claim in wrong_claims(answer, program):
        full = SolveResult(Status.FEASIBLE, "tampered", answer_set=tuple(claim))
        check = verify_asp(program, full)
        assert not check.ok and check.conclusive, (claim, check)
        # In the worker: a first diagnosis over the claimed symbols comes before the program is
        # rewritten with guarded constraints (which a deadline may cut short).
        rewritten: list[bool] = []
        original = worker.guarded_program

        def spy(*args: Any, _orig: Any = original, _seen: list[bool] = rewritten) -> Any:
            _seen.append(True)
            return _orig(*args)

        monkeypatch.setattr(worker, "guarded_program", spy)
        events = run_verify(program, claim, monkeypatch)
        result = next(e for e in events if e["event"] == "result")
        if result["outcome"] == "unsat":
            diagnoses = [e for e in events if e["event"] == "diagnosis"]
            assert diagnoses and all("claim" in m for m in diagnoses[0]["members"])
            assert rewritten
        else:  # a symbol the program never shows, found without any search
            assert result["never_shown"] == ["never(shown)"] and not rewritten


def test_a_false_colouring_names_the_broken_constraint() -> None:
    answer = solve(COLOURING).answer_set
    assert answer is not None
    # Give node 3 the colour of its neighbour 1.
    one = next(a for a in answer if a.startswith("color(1,"))
    wrong = tuple(a if not a.startswith("color(3,") else f"color(3,{one[-2]})" for a in answer)
    check = verify_asp(COLOURING, SolveResult(Status.FEASIBLE, "tampered", answer_set=wrong))
    assert not check.ok and check.conclusive
    assert any(
        "constraint at line 5" in v.name and "neighbours differ" in v.detail
        for v in check.violations
    )


# -- statuses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_program_with_nothing_to_optimize_is_feasible(name: str) -> None:
    result = solve(PROGRAMS[name])
    assert result.status is Status.FEASIBLE and result.cost is None
    assert verify_asp(PROGRAMS[name], result).ok


@pytest.mark.parametrize(
    "optimize",
    [
        "#minimize { 1,X : color(X,r) }.",
        "#maximize { 1,X : color(X,g) }.",
        ":~ color(X,b). [1,X]",
        "#minimize { 0,X : color(X,r) }.",  # optimizing, even though every cost is 0
    ],
)
def test_a_program_that_optimizes_is_optimal(optimize: str) -> None:
    program = COLOURING + optimize + "\n"
    result = solve(program)
    assert result.status is Status.OPTIMAL and result.cost is not None
    assert verify_asp(program, result).ok


def test_cli_json_says_feasible_for_a_plain_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "colouring.lp"
    path.write_text(COLOURING)
    assert main(["solve", str(path), "--json", "--no-cache"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["status"], data["objective"], data["cost"], data["verified"]) == (
        "FEASIBLE",
        None,
        None,
        True,
    )
    assert "nothing to optimize" in data["explanation"]


# -- several priority levels --------------------------------------------------------------------------

LEVELS = [
    ("#minimize { 1,X : color(X,r) }.", 1),
    ("#minimize { 1@3,X : color(X,r) }. #minimize { 1@1,X : color(X,g) }.", 2),
    (
        "#minimize { 1@3,X : color(X,r) }. :~ color(X,g). [1@2,X]\n#maximize { 1@1,X : color(X,b) }.",
        3,
    ),
]


@pytest.mark.parametrize(("optimize", "levels"), LEVELS)
def test_every_priority_level_is_reported_highest_first(optimize: str, levels: int) -> None:
    program = COLOURING + optimize + "\n"
    answer = agent_with().solve(Request(program, "p.lp"))
    assert answer.status is Status.OPTIMAL and answer.verified
    cost = answer.cost
    assert cost is not None and len(cost) == levels
    if levels == 1:
        assert answer.objective == float(cost[0])  # one level stays a number
    else:
        assert answer.objective == [float(c) for c in cost]
        assert answer.to_json()["objective"] == [float(c) for c in cost]
        assert f"cost {', '.join(str(c) for c in cost)} (one value per priority level" in (
            answer.explanation
        )
    # the highest level first: the top-priority criterion is the red nodes (1@3 / the only one)
    reds = sum(1 for a in answer.answer_set or () if a.endswith(",r)"))
    assert cost[0] == reds


def test_cli_json_and_example_line_show_every_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "levels.lp"
    path.write_text(COLOURING + LEVELS[2][0] + "\n")
    assert main(["solve", str(path), "--json", "--no-cache"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data["objective"], list) and len(data["objective"]) == 3
    assert data["objective"] == [float(c) for c in data["cost"]]
    from agent.cli import _example_line

    answer = agent_with().solve(Request(path.read_text(), "levels.lp"))
    _example_line(path, answer)
    line = capsys.readouterr().out
    assert "objective [" in line and "verified" in line


def test_an_answer_with_one_level_or_none_keeps_its_scalar_objective() -> None:
    from agent.types import Answer

    one = SolveResult(Status.OPTIMAL, "clingo", 3.0, answer_set=(), cost=(3,))
    assert Answer(Status.OPTIMAL, "asp", 3.0, solve_result=one).objective == 3.0
    two = dataclasses.replace(one, cost=(3, 7))
    assert Answer(Status.OPTIMAL, "asp", 3.0, solve_result=two).objective == [3.0, 7.0]
    # no objective (an infeasible answer, say) stays None whatever the result carries
    assert Answer(Status.TIMEOUT, "asp", None, solve_result=two).objective is None
